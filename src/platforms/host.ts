/**
 * The host platform in Go's vocabulary (GOOS/GOARCH and the ARM variant read
 * from /proc/cpuinfo), derived from process.platform / process.arch.
 */
import { readFileSync } from 'node:fs';
import { endianness } from 'node:os';

const OS_MAP: Record<string, string> = {
  linux: 'linux', darwin: 'darwin', win32: 'windows', cygwin: 'windows', freebsd: 'freebsd',
  openbsd: 'openbsd', netbsd: 'netbsd', sunos: 'solaris', aix: 'aix', android: 'android', haiku: 'haiku',
};

const ARCH_MAP: Record<string, string> = {
  x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64', s390x: 's390x', s390: 's390',
  riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle', ppc: 'ppc',
};

/** Go's GOOS for this process. */
export function hostOS(): string {
  return OS_MAP[process.platform] ?? process.platform;
}

/** Go's GOARCH for this process. */
export function hostArch(): string {
  if (process.arch === 'ppc64') return endianness() === 'LE' ? 'ppc64le' : 'ppc64';
  return ARCH_MAP[process.arch] ?? process.arch;
}

let variantCache: string | undefined;

/**
 * The CPU variant on ARM hosts ("v8", "v7", "v6"…; "" elsewhere; "unknown"
 * when it can't be read). Linux reads "CPU architecture" from /proc/cpuinfo;
 * Windows/macOS imply v7 for arm and v8 for arm64. Cached.
 */
export function cpuVariant(): string {
  if (variantCache !== undefined) return variantCache;
  const arch = hostArch();
  if (arch !== 'arm' && arch !== 'arm64') return (variantCache = '');
  const os = hostOS();
  if (os === 'windows' || os === 'darwin') return (variantCache = arch === 'arm64' ? 'v8' : 'v7');
  return (variantCache = variantFromCpuinfo(readCpuinfo(), arch));
}

function readCpuinfo(): string {
  if (hostOS() !== 'linux') return '';
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

function cpuinfoField(cpuinfo: string, name: string): string | undefined {
  for (const line of cpuinfo.split('\n')) {
    const parts = line.split(':');
    if (parts.length > 1 && parts[0].trim().toLowerCase() === name.toLowerCase()) return parts[1].trim();
  }
  return undefined;
}

/** Maps /proc/cpuinfo's "CPU architecture" onto a variant (exported for tests). */
export function variantFromCpuinfo(cpuinfo: string, arch: string): string {
  let v = cpuinfoField(cpuinfo, 'Cpu architecture');
  if (v === undefined) return '';
  // Raspberry Pi ARMv6 boards report "7" (kernel quirk); the model name tells.
  if (arch === 'arm' && v === '7' && (cpuinfoField(cpuinfo, 'model name') ?? '').toLowerCase().startsWith('armv6-compatible')) v = '6';
  switch (v.toLowerCase()) {
    case '8': case 'aarch64': return 'v8';
    case '7': case '7m': case '?(12)': case '?(13)': case '?(14)': case '?(15)': case '?(16)': case '?(17)': return 'v7';
    case '6': case '6tej': return 'v6';
    case '5': case '5t': case '5te': case '5tej': return 'v5';
    case '4': case '4t': return 'v4';
    case '3': return 'v3';
    default: return 'unknown';
  }
}
