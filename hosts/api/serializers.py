"""API shapes of the inventory. Secrets are write-only: no serializer ever returns one."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from hosts import importing, selectors
from hosts.choices import CredentialKind
from hosts.keys import KeyFormatError, private_key_fingerprint
from hosts.models import Credential, Discovery, Host, HostCheck, Snapshot


def _cleaned(fn: Any, value: Any) -> Any:
    """Run one of the import's validators, turning its ValueError into a field error."""
    try:
        return fn(value)
    except ValueError as exc:
        raise serializers.ValidationError(str(exc)) from exc


class TagListField(serializers.ListField):
    """Tag names: written as a list of slugs, read from the (prefetched) tags relation."""

    child = serializers.CharField(max_length=64)

    def to_representation(self, data: Any) -> list[str]:
        if hasattr(data, "all"):
            return [tag.name for tag in data.all()]
        return list(data)

    def to_internal_value(self, data: Any) -> list[str]:
        return _cleaned(importing.clean_tags, super().to_internal_value(data))


class HostSerializer(serializers.ModelSerializer):
    """A host as the API shows it; on create, also its connection settings and optional key."""

    user = serializers.CharField(source="ssh_user", max_length=32)
    credential = serializers.SlugRelatedField(slug_field="name", queryset=Credential.objects.all())
    tags = TagListField(required=False, default=list)
    use_sudo = serializers.BooleanField(required=False, allow_null=True, default=None)
    port = serializers.IntegerField(min_value=1, max_value=65535, default=22)
    name = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    host_key = serializers.CharField(
        write_only=True, required=False, allow_blank=True, default="", help_text="OpenSSH public key line to pin"
    )
    trust_on_first_use = serializers.BooleanField(required=False, default=False)
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = Host
        fields = [
            "id",
            "name",
            "address",
            "port",
            "user",
            "credential",
            "tags",
            "use_sudo",
            "host_key",
            "host_key_fingerprint",
            "host_key_pinned_at",
            "trust_on_first_use",
            "distro_id",
            "distro_version",
            "distro_name",
            "kernel",
            "arch",
            "cpu_cores",
            "memory_mb",
            "eligibility",
            "eligibility_reasons",
            "agent_state",
            "agent_version",
            "definitions_version",
            "agent_healthy",
            "org_id",
            "real_time_protection",
            "conflicting_applications",
            "last_seen_at",
            "last_discovered_at",
            "last_error",
            "created_at",
            "updated_at",
            "page_url",
        ]
        # Everything but the connection settings is learned from the host or kept by the app.
        read_only_fields = [
            f
            for f in fields
            if f
            not in {"id", "name", "address", "port", "user", "credential", "tags", "use_sudo", "host_key",
                    "trust_on_first_use", "page_url"}
        ]  # fmt: skip
        # The (address, port) uniqueness is checked in validate() with a readable message.
        validators: list[Any] = []

    def get_page_url(self, host: Host) -> str:
        return reverse("hosts:host", args=[host.pk])

    def validate_name(self, value: str) -> str:
        return _cleaned(importing.clean_name, value)

    def validate_address(self, value: str) -> str:
        return _cleaned(importing.clean_address, value)

    def validate_user(self, value: str) -> str:
        return _cleaned(importing.clean_user, value)

    def validate_host_key(self, value: str) -> str:
        return _cleaned(importing.clean_host_key, value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if Host.objects.filter(address__iexact=attrs["address"], port=attrs["port"]).exists():
            raise serializers.ValidationError({"address": f"{attrs['address']}:{attrs['port']} is already a host."})
        return attrs


class HostUpdateSerializer(serializers.Serializer):
    """What PATCH may change; the address and the host key are not among it."""

    name = serializers.CharField(max_length=255, required=False)
    port = serializers.IntegerField(min_value=1, max_value=65535, required=False)
    user = serializers.CharField(source="ssh_user", max_length=32, required=False)
    credential = serializers.SlugRelatedField(slug_field="name", queryset=Credential.objects.all(), required=False)
    tags = TagListField(required=False)
    use_sudo = serializers.BooleanField(required=False)

    def validate_name(self, value: str) -> str:
        value = _cleaned(importing.clean_name, value)
        if not value:
            raise serializers.ValidationError("must not be empty")
        return value

    def validate_user(self, value: str) -> str:
        return _cleaned(importing.clean_user, value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: "cannot be changed here" for name in unknown})
        host: Host = self.instance
        port = attrs.get("port")
        if port is not None and port != host.port:
            clash = Host.objects.filter(address__iexact=host.address, port=port).exclude(pk=host.pk)
            if clash.exists():
                raise serializers.ValidationError({"port": f"{host.address}:{port} is already a host."})
        return attrs


class SnapshotSerializer(serializers.ModelSerializer):
    agent_rss_mb = serializers.FloatField(read_only=True)
    agent_cpu_pct = serializers.FloatField(read_only=True)

    class Meta:
        model = Snapshot
        fields = [
            "id",
            "phase",
            "taken_at",
            "cpu_busy_pct",
            "load_1",
            "load_5",
            "load_15",
            "mem_total_mb",
            "mem_used_mb",
            "mem_available_mb",
            "swap_total_mb",
            "swap_used_mb",
            "filesystems",
            "top_processes",
            "agent_processes",
            "agent_rss_mb",
            "agent_cpu_pct",
            "samples",
        ]
        read_only_fields = fields


class HostCheckSerializer(serializers.ModelSerializer):
    output = serializers.SerializerMethodField(help_text="Trimmed output, at most 64 KB")
    discovery = serializers.IntegerField(source="discovery_id", read_only=True)

    class Meta:
        model = HostCheck
        fields = [
            "id",
            "discovery",
            "step",
            "status",
            "reason",
            "exit_code",
            "duration_ms",
            "command",
            "output",
            "parsed",
            "finished_at",
        ]
        read_only_fields = fields

    def get_output(self, check: HostCheck) -> str:
        return selectors.check_output_shown(check=check)[0]


class DiscoverySerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    total = serializers.SerializerMethodField()
    done = serializers.SerializerMethodField()
    finished = serializers.SerializerMethodField()
    counts = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = Discovery
        fields = [
            "id",
            "kind",
            "status",
            "created_by",
            "created_at",
            "finished_at",
            "total",
            "done",
            "finished",
            "counts",
        ]
        fields += ["url", "page_url"]
        read_only_fields = fields

    def _progress(self, discovery: Discovery) -> dict[str, Any]:
        cache = self.context.setdefault("_progress", {})
        if discovery.pk not in cache:
            from hosts.services import discovery_progress

            cache[discovery.pk] = discovery_progress(discovery=discovery)
        return cache[discovery.pk]

    def get_total(self, discovery: Discovery) -> int:
        return self._progress(discovery)["total"]

    def get_done(self, discovery: Discovery) -> int:
        return self._progress(discovery)["done"]

    def get_finished(self, discovery: Discovery) -> bool:
        return bool(self._progress(discovery)["finished"])

    @extend_schema_field(
        {"type": "object", "additionalProperties": {"type": "integer"}, "example": {"pending": 3, "ok": 5}}
    )
    def get_counts(self, discovery: Discovery) -> dict[str, int]:
        return self._progress(discovery)["counts"]

    def get_url(self, discovery: Discovery) -> str:
        return reverse("hosts-api:discovery-detail", args=[discovery.pk])

    def get_page_url(self, discovery: Discovery) -> str:
        return reverse("hosts:discovery", args=[discovery.pk])


class CredentialSerializer(serializers.ModelSerializer):
    """A credential; ``secret`` and ``passphrase`` are accepted and never returned."""

    secret = serializers.CharField(
        write_only=True,
        trim_whitespace=False,
        style={"base_template": "textarea.html"},
        help_text="Private key or password",
    )
    passphrase = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        style={"input_type": "password"},
    )
    host_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Credential
        fields = ["id", "name", "kind", "secret", "passphrase", "public_fingerprint", "host_count", "created_at"]
        read_only_fields = ["public_fingerprint", "created_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["kind"] == CredentialKind.PRIVATE_KEY:
            try:
                private_key_fingerprint(attrs["secret"], attrs.get("passphrase") or "")
            except KeyFormatError:
                raise serializers.ValidationError(
                    {"secret": "not a private key that can be read (or the passphrase is wrong)"}
                ) from None
        elif attrs.get("passphrase"):
            raise serializers.ValidationError({"passphrase": "a password credential has no passphrase"})
        return attrs


class ImportRequestSerializer(serializers.Serializer):
    """An inventory in the body (``content``) or as an uploaded ``file``."""

    format = serializers.ChoiceField(choices=importing.FORMATS, default="auto")
    content = serializers.CharField(required=False, trim_whitespace=False, allow_blank=True)
    file = serializers.FileField(required=False)
    trust_on_first_use = serializers.BooleanField(default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        has_content = bool((attrs.get("content") or "").strip())
        if has_content == ("file" in attrs):
            raise serializers.ValidationError("send either content or a file")
        upload = attrs.get("file")
        if upload is not None and upload.size > importing.MAX_BYTES:
            raise serializers.ValidationError({"file": f"larger than {importing.MAX_BYTES // (1024 * 1024)} MiB"})
        return attrs

    def raw_content(self) -> bytes | str:
        upload = self.validated_data.get("file")
        if upload is not None:
            return b"".join(upload.chunks())
        return self.validated_data["content"]


class ImportJSONSerializer(serializers.Serializer):
    """Schema of the JSON body of an import."""

    format = serializers.ChoiceField(choices=importing.FORMATS, default="auto")
    content = serializers.CharField(help_text="The CSV or JSON inventory as text")
    trust_on_first_use = serializers.BooleanField(default=False)


class ImportUploadSerializer(serializers.Serializer):
    """Schema of the multipart body of an import."""

    format = serializers.ChoiceField(choices=importing.FORMATS, default="auto")
    file = serializers.FileField()
    trust_on_first_use = serializers.BooleanField(default=False)


class RowErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="Line of the file (0: the file or request as a whole)")
    field = serializers.CharField()
    message = serializers.CharField()


class ImportErrorsSerializer(serializers.Serializer):
    errors = RowErrorSerializer(many=True)


class ImportedHostSerializer(serializers.ModelSerializer):
    class Meta:
        model = Host
        fields = ["id", "name", "address", "port"]


class ImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    hosts = ImportedHostSerializer(many=True)


class DiscoverRequestSerializer(serializers.Serializer):
    """Either host ids or a filter with the fleet filter's parameters (tag, distro, eligibility, ...)."""

    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, allow_empty=False)
    filter = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("ids" in attrs) == ("filter" in attrs):
            raise serializers.ValidationError("send either ids or filter")
        return attrs


class WayBackRequestSerializer(serializers.Serializer):
    """Hosts by id, what to do, and for offboarding the portal's mdatp_offboard.json (never returned)."""

    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), allow_empty=False)
    mode = serializers.ChoiceField(choices=["offboard", "uninstall"])
    offboarding_package = serializers.CharField(
        required=False, allow_blank=True, default="", write_only=True, trim_whitespace=False,
        help_text="The content of mdatp_offboard.json from the Defender portal (mode offboard)",
    )  # fmt: skip


class DiscoverResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    hosts = serializers.IntegerField()
    url = serializers.CharField()
    page_url = serializers.CharField()
