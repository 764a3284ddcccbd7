"""CPU readers: vendor, model, ISA flags (normalised), performance/efficiency cores.

Flags keep the OS's raw names and always add the normalised ones edgeort's profiles use:
x86 ``avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni avx_vnni avx512_bf16
avx512_fp16 amx_tile amx_int8 amx_bf16``; arm64 ``asimd asimddp i8mm sve sve2 sme bf16
fp16``.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeort.hardware._sources import Sources

__all__ = ["ARM_FLAGS", "X86_FLAGS", "CpuInfo", "parse_cpuinfo", "read_cpu"]

X86_FLAGS = (
    "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
    "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16",
)  # fmt: skip
ARM_FLAGS = ("asimd", "asimddp", "i8mm", "sve", "sve2", "sme", "bf16", "fp16")

# Linux arm64 /proc/cpuinfo names that mean a normalised flag.
_LINUX_ARM_ALIAS = {"fphp": "fp16", "asimdhp": "fp16"}
# macOS sysctl hw.optional.* (value 1) -> normalised flag.
_MAC_ARM = {
    "hw.optional.neon": "asimd",
    "hw.optional.AdvSIMD": "asimd",
    "hw.optional.arm.FEAT_DotProd": "asimddp",
    "hw.optional.arm.FEAT_I8MM": "i8mm",
    "hw.optional.arm.FEAT_BF16": "bf16",
    "hw.optional.arm.FEAT_FP16": "fp16",
    "hw.optional.neon_fp16": "fp16",
    "hw.optional.arm.FEAT_SME": "sme",
    "hw.optional.arm.FEAT_SME2": "sme2",
}
# macOS x86 machdep.cpu.features / leaf7_features tokens (lower case) -> normalised flag.
_MAC_X86 = {"avx512vnni": "avx512_vnni", "avx512bf16": "avx512_bf16",
            "avx512fp16": "avx512_fp16", "avxvnni": "avx_vnni"}  # fmt: skip
_WINDOWS_PF = {
    "PF_AVX_INSTRUCTIONS_AVAILABLE": "avx",
    "PF_AVX2_INSTRUCTIONS_AVAILABLE": "avx2",
    "PF_AVX512F_INSTRUCTIONS_AVAILABLE": "avx512f",
    "PF_ARM_NEON_INSTRUCTIONS_AVAILABLE": "asimd",
    "PF_ARM_V82_DP_INSTRUCTIONS_AVAILABLE": "asimddp",
    "PF_ARM_SVE_INSTRUCTIONS_AVAILABLE": "sve",
    "PF_ARM_SVE2_INSTRUCTIONS_AVAILABLE": "sve2",
    "PF_ARM_V82_I8MM_INSTRUCTIONS_AVAILABLE": "i8mm",
    "PF_ARM_V82_FP16_INSTRUCTIONS_AVAILABLE": "fp16",
    "PF_ARM_V86_BF16_INSTRUCTIONS_AVAILABLE": "bf16",
    "PF_ARM_SME_INSTRUCTIONS_AVAILABLE": "sme",
}
_X86_VENDORS = {"GenuineIntel": "intel", "AuthenticAMD": "amd", "HygonGenuine": "hygon",
                "CentaurHauls": "zhaoxin", "  Shanghai  ": "zhaoxin"}  # fmt: skip
ARM_IMPLEMENTERS = {0x41: "arm", 0x42: "broadcom", 0x43: "cavium", 0x46: "fujitsu",
                    0x48: "hisilicon", 0x4E: "nvidia", 0x51: "qualcomm", 0x53: "samsung",
                    0x61: "apple", 0x6D: "microsoft", 0xC0: "ampere"}  # fmt: skip
_ARM_PARTS = {0xD03: "Cortex-A53", 0xD04: "Cortex-A35", 0xD05: "Cortex-A55",
              0xD07: "Cortex-A57", 0xD08: "Cortex-A72", 0xD09: "Cortex-A73",
              0xD0A: "Cortex-A75", 0xD0B: "Cortex-A76", 0xD0C: "Neoverse-N1",
              0xD0D: "Cortex-A77", 0xD40: "Neoverse-V1", 0xD41: "Cortex-A78", 0xD42: "Cortex-A78AE",
              0xD44: "Cortex-X1", 0xD46: "Cortex-A510", 0xD47: "Cortex-A710",
              0xD48: "Cortex-X2", 0xD49: "Neoverse-N2", 0xD4D: "Cortex-A715",
              0xD4E: "Cortex-X3", 0xD4F: "Neoverse-V2", 0xD80: "Cortex-A520",
              0xD81: "Cortex-A720", 0xD82: "Cortex-X4", 0xD85: "Cortex-X925",
              0xD87: "Cortex-A725"}  # fmt: skip

# A core is an efficiency core when its max frequency (or capacity) is below this
# fraction of the fastest core's. Same-class cores differ by a few percent (AMD
# preferred cores); little cores run at ~55-75 % of the big ones.
EFFICIENCY_RATIO = 0.8


@dataclass(frozen=True, slots=True)
class CpuInfo:
    vendor: str
    model: str
    flags: frozenset[str]
    physical: int | None
    logical: int | None
    performance: int | None
    efficiency: int | None
    board: str | None = None  # board/SoC named by /proc/cpuinfo (Hardware:, Model:)
    notes: tuple[str, ...] = ()


def parse_cpuinfo(text: str) -> list[dict[str, str]]:
    """``/proc/cpuinfo`` as one ``{key: value}`` dict per block (processor or trailer)."""
    blocks: list[dict[str, str]] = [{}]
    for line in text.splitlines():
        if not line.strip():
            if blocks[-1]:
                blocks.append({})
            continue
        key, sep, value = line.partition(":")
        if sep:
            blocks[-1][key.strip()] = value.strip()
    return [b for b in blocks if b]


def normalise_flags(raw: set[str], arch: str) -> frozenset[str]:
    flags = set(raw)
    if arch == "arm64":
        flags.update(_LINUX_ARM_ALIAS[f] for f in raw if f in _LINUX_ARM_ALIAS)
    return frozenset(flags)


def read_cpu(src: Sources, os_name: str, arch: str, absent: dict[str, str]) -> CpuInfo:
    physical, logical = src.cpu_counts()
    if physical is None:
        absent["physical_cores"] = "psutil.cpu_count(logical=False) returned None"
    if logical is None:
        absent["logical_cores"] = "psutil.cpu_count() returned None"
    notes: tuple[str, ...] = ()
    if os_name == "darwin":
        vendor, model, flags, perf, eff, notes = _darwin(src, arch, absent)
        board = None
    elif os_name == "windows":
        vendor, model, flags = _windows(src, arch, absent)
        perf = eff = None
        board = None
        absent["performance_cores"] = "not read on Windows (needs GetLogicalProcessorInformationEx)"
    else:
        vendor, model, flags, board = _linux(src, arch, absent)
        perf, eff = linux_core_split(src, physical, absent)
    return CpuInfo(vendor, model, flags, physical, logical, perf, eff, board, notes)


def _linux(
    src: Sources, arch: str, absent: dict[str, str]
) -> tuple[str, str, frozenset[str], str | None]:
    text = src.read_text("/proc/cpuinfo")
    blocks = parse_cpuinfo(text) if text else []
    procs = [b for b in blocks if "processor" in b]
    if not procs:
        why = "unreadable" if text is None else "has no processor entries"
        absent["cpu_flags"] = f"/proc/cpuinfo {why}"
        absent["cpu_model"] = f"/proc/cpuinfo {why}"
        return "", "", frozenset(), None
    first = procs[0]
    trailer = {k: v for b in blocks for k, v in b.items() if "processor" not in b}
    raw = {f for b in procs for f in (b.get("flags") or b.get("Features") or "").split()}
    if not raw:
        absent["cpu_flags"] = "/proc/cpuinfo lists no flags/Features"
    board = trailer.get("Hardware") or first.get("Hardware") or trailer.get("Model")
    if "vendor_id" in first:
        vendor = _X86_VENDORS.get(first["vendor_id"], first["vendor_id"].lower())
        return vendor, first.get("model name", ""), normalise_flags(raw, arch), board
    vendor, model = _arm_identity(procs)
    if not vendor:
        absent["cpu_model"] = "/proc/cpuinfo has no 'CPU implementer'"
    return vendor, model, normalise_flags(raw, arch), board


def _arm_identity(procs: list[dict[str, str]]) -> tuple[str, str]:
    def num(text: str | None) -> int | None:
        try:
            return int(text, 0) if text else None
        except ValueError:
            return None

    impl = num(procs[0].get("CPU implementer"))
    if impl is None:
        return "", procs[0].get("model name", "")
    parts: list[str] = []
    for block in procs:
        part = num(block.get("CPU part"))
        name = _ARM_PARTS.get(part, f"part {part:#x}") if part is not None else "unknown part"
        if ARM_IMPLEMENTERS.get(num(block.get("CPU implementer")) or -1) != "arm":
            name = f"{ARM_IMPLEMENTERS.get(impl, hex(impl))} {name}"
        if name not in parts:
            parts.append(name)
    return ARM_IMPLEMENTERS.get(impl, f"implementer {impl:#x}"), " + ".join(parts)


def _cpu_list(text: str | None) -> list[int] | None:
    """``"0-3,8"`` -> ``[0, 1, 2, 3, 8]``; ``None`` when unreadable."""
    if not text or not text.strip():
        return None
    out: list[int] = []
    try:
        for part in text.strip().split(","):
            lo, _, hi = part.partition("-")
            out.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        return None
    return out


def _physical_of(src: Sources, cpus: list[int]) -> int:
    """Distinct physical cores among logical ``cpus`` (SMT siblings count once)."""
    cores = set()
    for cpu in cpus:
        base = f"/sys/devices/system/cpu/cpu{cpu}/topology"
        core = src.read_text(f"{base}/core_id")
        pkg = src.read_text(f"{base}/physical_package_id") or "0"
        cores.add((pkg.strip(), core.strip()) if core else ("cpu", str(cpu)))
    return len(cores)


def linux_core_split(
    src: Sources, physical: int | None, absent: dict[str, str]
) -> tuple[int | None, int | None]:
    """(performance, efficiency) physical cores, from the kernel's own view."""
    big = _cpu_list(src.read_text("/sys/devices/cpu_core/cpus"))
    little = _cpu_list(src.read_text("/sys/devices/cpu_atom/cpus"))
    if big is not None or little is not None:  # Intel hybrid (P-cores / E-cores)
        return _physical_of(src, big or []), _physical_of(src, little or [])
    cpus = _cpu_list(src.read_text("/sys/devices/system/cpu/online"))
    if cpus is None:
        cpus = sorted(
            int(p.rsplit("cpu", 1)[1]) for p in src.glob("/sys/devices/system/cpu/cpu[0-9]*")
        )
    why = []
    for leaf in ("cpufreq/cpuinfo_max_freq", "cpu_capacity"):
        values = _per_cpu(src, cpus, leaf)
        if values is None:
            why.append(leaf)
            continue
        top = max(values.values())
        slow = [c for c, v in values.items() if v < EFFICIENCY_RATIO * top]
        if not slow:
            return physical or len(cpus), 0
        fast = [c for c in values if c not in slow]
        return _physical_of(src, fast), _physical_of(src, slow)
    absent["performance_cores"] = (
        "no /sys/devices/cpu_core or cpu_atom, and "
        + " / ".join(f"cpu*/{w}" for w in why)
        + " unreadable"
    )
    return None, None


def _per_cpu(src: Sources, cpus: list[int], leaf: str) -> dict[int, int] | None:
    values: dict[int, int] = {}
    for cpu in cpus:
        text = src.read_text(f"/sys/devices/system/cpu/cpu{cpu}/{leaf}")
        try:
            values[cpu] = int((text or "").strip())
        except ValueError:
            return None
    return values or None


def _sysctl(src: Sources) -> dict[str, str]:
    out = src.run(["sysctl", "hw", "machdep.cpu"])
    values = {}
    for line in (out or "").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values[key.strip()] = value.strip()
    return values


def _darwin(
    src: Sources, arch: str, absent: dict[str, str]
) -> tuple[str, str, frozenset[str], int | None, int | None, tuple[str, ...]]:
    ctl = _sysctl(src)
    if not ctl:
        absent["cpu_flags"] = "sysctl gave no output"
    brand = ctl.get("machdep.cpu.brand_string", "")
    vendor = "apple" if brand.startswith("Apple") else ("intel" if "Intel" in brand else "")
    flags = {flag for key, flag in _MAC_ARM.items() if ctl.get(key) == "1"}
    flags.update(k.rsplit(".", 1)[-1].lower() for k, v in ctl.items()
                 if k.startswith("hw.optional.arm.FEAT_") and v == "1")  # fmt: skip
    tokens = f"{ctl.get('machdep.cpu.features', '')} {ctl.get('machdep.cpu.leaf7_features', '')}"
    for token in tokens.lower().split():
        flags.add(token.replace(".", "_"))
        if token in _MAC_X86:
            flags.add(_MAC_X86[token])
    perf, eff = _int_or_none(ctl.get("hw.perflevel0.physicalcpu")), None
    if perf is None:
        absent["performance_cores"] = "sysctl has no hw.perflevel0.physicalcpu"
    else:
        eff = _int_or_none(ctl.get("hw.perflevel1.physicalcpu")) or 0
    notes: tuple[str, ...] = ()
    translated = arch == "x86_64" and src.run(["sysctl", "-n", "sysctl.proc_translated"])
    if translated and translated.strip() == "1":
        notes = (
            f"this {arch} Python runs under Rosetta 2 on Apple Silicon: install an arm64 "
            "Python to use the arm64 onnxruntime wheel (CoreML, NEON kernels)",
        )
    return vendor, brand, frozenset(flags), perf, eff, notes


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


_WIN_CPU_KEY = r"HARDWARE\DESCRIPTION\System\CentralProcessor\0"


def _windows(src: Sources, arch: str, absent: dict[str, str]) -> tuple[str, str, frozenset[str]]:
    ident = src.env.get("PROCESSOR_IDENTIFIER", "")
    model = (src.registry(_WIN_CPU_KEY, "ProcessorNameString") or "").strip() or ident
    tail = ident.rsplit(",", 1)[-1].strip() if "," in ident else ""
    vendor = _X86_VENDORS.get(tail, "")
    if not vendor:
        low = f"{model} {ident}".lower()
        vendor = next((v for v in ("qualcomm", "intel", "amd", "arm") if v in low), "")
    features = src.processor_features()
    if features is None:
        absent["cpu_flags"] = "IsProcessorFeaturePresent unavailable"
        return vendor, model, frozenset()
    flags = frozenset(_WINDOWS_PF[f] for f in features if f in _WINDOWS_PF)
    if arch == "x86_64":
        absent["cpu_flags"] = (
            "partial on Windows: IsProcessorFeaturePresent reports avx/avx2/avx512f only; "
            "fma, f16c, vnni, bf16 and amx are unknown"
        )
    return vendor, model, flags
