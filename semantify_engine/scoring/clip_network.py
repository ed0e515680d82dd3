"""Whether CLIP weights may and can be downloaded right now, and what to tell the user when they cannot.

Weights that are not cached must not cost a user open_clip's ~45 s DNS timeout followed by an obscure
error: before any download, the host is probed for about two seconds (or ``HF_HUB_OFFLINE=1`` refuses at
once), and :class:`ClipWeightsError` says how to provide the weights instead. Loading
(:mod:`.clip_loading`) and ``semantify clip download`` (:mod:`.weights`) ask the same question here.
"""

from __future__ import annotations

import os
import socket
import threading

from ..errors import ClipWeightsError
from .clip_spec import ClipSpec

NETWORK_PROBE_TIMEOUT_S = 2.0

_DOWNLOAD_COMMAND = 'python -c "import open_clip; open_clip.create_model_and_transforms({args})"'


def _hub_offline_requested() -> bool:
    """True when the user told Hugging Face not to use the network (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE)."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
            return True
    return False


def _probe_target(host: str, port: int) -> tuple[str, int]:
    """Where a connection would really go: the HTTPS proxy when one is configured, else the host itself."""
    import urllib.request  # pulls in http.client and ssl: only when a probe is needed

    proxy = urllib.request.getproxies().get("https")
    if proxy and not urllib.request.proxy_bypass(host):
        parsed = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if parsed.hostname:
            return parsed.hostname, parsed.port or 80
    return host, port


def _network_reachable(host: str, port: int = 443, timeout: float = NETWORK_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``host`` can be opened within ``timeout`` seconds, DNS included.

    ``host`` may carry its own port (``127.0.0.1:8000``, a mirror's). The connection runs in a daemon
    thread because name resolution ignores socket timeouts: on a machine without DNS it can block for
    ~45 s, which is exactly the wait this check exists to avoid.
    """
    name, _, explicit = host.rpartition(":")
    if name and explicit.isdigit():
        host, port = name, int(explicit)
    target = _probe_target(host, port)
    outcome: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection(target, timeout=timeout):
                outcome.append(True)
        except OSError:
            outcome.append(False)

    worker = threading.Thread(target=attempt, name="semantify-network-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(outcome) and outcome[0]


HOW_TO_PARAMETERS = ("pretrained", "clip")
"""The parameters :func:`_how_to_provide`'s instructions name: an error that ends with them names these."""


def _how_to_provide(spec: ClipSpec, cache_hint: str) -> str:
    """The instructions that end every missing-weights message (naming :data:`HOW_TO_PARAMETERS`)."""
    hub_id = spec.hub_id
    args = repr(hub_id) if hub_id else f"{spec.model!r}, pretrained={spec.pretrained!r}"
    return (
        "Provide the weights in one of these ways:\n"
        f"  1. On a machine with internet access, download them once into open_clip's cache:\n"
        f"       {_DOWNLOAD_COMMAND.format(args=args)}\n"
        f"     then copy the cache folder ({cache_hint}) to the same place on this machine, or point\n"
        "     HF_HUB_CACHE / HF_HOME (or SEMANTIFY_CLIP_CACHE_DIR) to where you put it.\n"
        "  2. Use a local weights file: {pretrained} /path/to/file.bin, or\n"
        "     SEMANTIFY_CLIP_PRETRAINED=/path/to/file.bin, with {clip} / SEMANTIFY_CLIP_MODEL naming its\n"
        "     architecture (ViT-B-32-quickgelu for OpenAI's ViT-B/32 weights); in Blender: Preferences >\n"
        "     Semantify > Use a Local File."
    )


def _missing_weights(spec: ClipSpec, cache_hint: str, reason: str) -> ClipWeightsError:
    """The error for weights that are neither cached nor downloadable right now."""
    return ClipWeightsError(
        f"No weights for {spec.describe()}: they are not in the local cache ({cache_hint}) and {reason}.\n"
        + _how_to_provide(spec, cache_hint),
        parameters=HOW_TO_PARAMETERS,
    )


def _require_download_possible(spec: ClipSpec, host: str, cache_hint: str) -> None:
    """Raise :class:`ClipWeightsError` at once when a download cannot succeed (offline mode or no network)."""
    if _hub_offline_requested():
        raise _missing_weights(spec, cache_hint, "HF_HUB_OFFLINE is set, so nothing may be downloaded")
    if host and not _network_reachable(host):
        reason = f"{host} cannot be reached from this machine (tried for {NETWORK_PROBE_TIMEOUT_S:.0f} s)"
        raise _missing_weights(spec, cache_hint, reason)
