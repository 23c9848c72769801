# Sourced by the stub agent's daemon and client: where the agent keeps its state, and its "engine",
# which knows one threat: the EICAR test file.
ETC=/etc/opt/microsoft/mdatp
VAR=/var/opt/microsoft/mdatp
MANAGED=$ETC/managed/mdatp_managed.json
THREATS=$VAR/threats
EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'

# antivirusEngine.enforcementLevel of the managed settings; empty when they do not set it.
managed_level() {
  python3 -c 'import json, sys
print(json.load(open(sys.argv[1])).get("antivirusEngine", {}).get("enforcementLevel", ""))' "$MANAGED" 2>/dev/null
}

# The level in force: the managed one, else passive (the default since 101.23062.0001).
enforcement_level() {
  level=$(managed_level)
  echo "${level:-passive}"
}

# True when FILE starts with the 68-byte EICAR string, as every engine detects it.
is_eicar() {
  [ -f "$1" ] && [ "$(head -c 68 "$1" 2>/dev/null)" = "$EICAR" ]
}

# Add one record to what `mdatp threat list` prints (its text layout, MDE-FACTS 2.4).
record_threat() { # PATH STATUS ID
  printf 'Id: "%s"\nName: Virus:DOS/EICAR_Test_File\nType: "virus"\nDetection time: %s\nStatus: "%s"\nPath: "%s"\n\n' \
    "$3" "$(date '+%a %b %d %H:%M:%S %Y')" "$2" "$1" >> "$THREATS"
}

# Remediation: the file moves to the quarantine directory and is listed as quarantined.
quarantine() { # PATH
  id=$(cat /proc/sys/kernel/random/uuid)
  mv -f "$1" "$VAR/quarantine/$id" && record_threat "$1" quarantined "$id"
}
