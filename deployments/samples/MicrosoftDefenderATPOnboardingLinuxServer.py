#!/usr/bin/env python3
# =====================================================================================
#  SAMPLE ONBOARDING PACKAGE FOR THE mdefleet DEMO AND TESTS - IT ONBOARDS NOTHING.
#
#  It has the shape of the "Local Script" package the Defender portal gives for Linux
#  servers (Settings > Endpoints > Onboarding > Linux Server): a script that writes
#  /etc/opt/microsoft/mdatp/mdatp_onboard.json from the JSON embedded below.
#  The organization id d3b07384-d9a0-4c9b-8a2e-5f1c7e9a4b21 belongs to no tenant and the
#  signature and certificate are placeholders, so a real mdatp agent refuses it.
#  mdefleet's simulated hosts may accept it; nothing else should.
#
#  Differences from the real script: it does not re-run itself through sudo (it stops
#  when not root), and --dest writes elsewhere (for tests).
# =====================================================================================
# ruff: noqa: UP031  (% formatting kept: like the portal's script, it also runs on old Pythons)

import getopt
import os
import sys

DEFAULT_DEST = "/etc/opt/microsoft/mdatp/mdatp_onboard.json"

ONBOARDING_JSON = """{
  "onboardingInfo": "{\\"body\\":\\"{\\\\\\"previousOrgIds\\\\\\":[],\\\\\\"orgId\\\\\\":\\\\\\"d3b07384-d9a0-4c9b-8a2e-5f1c7e9a4b21\\\\\\",\\\\\\"geoLocationUrl\\\\\\":\\\\\\"https://winatp-gw-weu.microsoft.com/\\\\\\",\\\\\\"datacenter\\\\\\":\\\\\\"WestEurope\\\\\\",\\\\\\"vortexGeoLocation\\\\\\":\\\\\\"EU\\\\\\",\\\\\\"version\\\\\\":\\\\\\"2.11\\\\\\",\\\\\\"deviceType\\\\\\":\\\\\\"Server\\\\\\",\\\\\\"packageGuid\\\\\\":\\\\\\"00000000-5a3e-4e1b-9c0d-000000000000\\\\\\"}\\",\\"sig\\":\\"U0FNUExFIC0gTk9UIEEgU0lHTkFUVVJFIC0gbWRlZmxlZXQgZGVtbyBwYWNrYWdl\\",\\"sha256sig\\":\\"U0FNUExFIC0gTk9UIEEgU0lHTkFUVVJFIC0gbWRlZmxlZXQgZGVtbyBwYWNrYWdl\\",\\"cert\\":\\"U0FNUExFIC0gTk9UIEEgQ0VSVElGSUNBVEU=\\",\\"chain\\":[]}"
}"""


def usage():
    print("Usage: %s [--dest PATH]" % sys.argv[0])
    print("    Writes the (sample) onboarding file for Microsoft Defender for Endpoint.")


def main(argv):
    try:
        opts, _ = getopt.getopt(argv, "h", ["help", "dest="])
    except getopt.GetoptError as e:
        print(e)
        usage()
        return 2
    destfile = DEFAULT_DEST
    for key, value in opts:
        if key in ("-h", "--help"):
            usage()
            return 0
        if key == "--dest":
            destfile = value
    if destfile == DEFAULT_DEST and os.geteuid() != 0:
        print("Run as root: sudo python3 %s" % sys.argv[0])
        return 1
    try:
        print("Generating %s ..." % destfile)
        directory = os.path.dirname(destfile)
        if directory and not os.path.exists(directory):
            os.makedirs(directory)
        with open(destfile, "w") as json_file:
            json_file.write(ONBOARDING_JSON)
        os.chmod(destfile, 0o640)
    except Exception as e:
        print(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
