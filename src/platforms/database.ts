/**
 * Known operating systems and architectures, and the normalisation rules
 * (aliases such as x86_64 → amd64, aarch64 → arm64, armhf → arm/v7) that
 * containerd applies before comparing platforms.
 */
import { hostOS } from './host.js';

const KNOWN_OS = new Set([
  'aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'hurd', 'illumos', 'ios', 'js', 'linux',
  'nacl', 'netbsd', 'openbsd', 'plan9', 'solaris', 'windows', 'zos',
]);

const KNOWN_ARCH = new Set([
  '386', 'amd64', 'amd64p32', 'arm', 'armbe', 'arm64', 'arm64be', 'ppc64', 'ppc64le', 'loong64',
  'mips', 'mipsle', 'mips64', 'mips64le', 'mips64p32', 'mips64p32le', 'ppc', 'riscv', 'riscv64',
  's390', 's390x', 'sparc', 'sparc64', 'wasm',
]);

/** os must be normalised first. */
export function isKnownOS(os: string): boolean {
  return KNOWN_OS.has(os);
}

/** arch must be normalised first. */
export function isKnownArch(arch: string): boolean {
  return KNOWN_ARCH.has(arch);
}

export function isArmArch(arch: string): boolean {
  return arch === 'arm' || arch === 'arm64';
}

/** Lower-cases; "" becomes the host OS; macos → darwin. */
export function normalizeOS(os: string): string {
  if (os === '') return hostOS();
  os = os.toLowerCase();
  return os === 'macos' ? 'darwin' : os;
}

/**
 * Canonical [architecture, variant]: i386 → 386; x86_64/x86-64 → amd64
 * (variant v1 dropped); aarch64 → arm64 (variant 8/v8 dropped); armhf →
 * arm/v7; armel → arm/v6; arm with no variant or "7" → v7, "5"/"6"/"8" → "vN".
 */
export function normalizeArch(arch: string, variant: string): [string, string] {
  arch = arch.toLowerCase();
  variant = variant.toLowerCase();
  switch (arch) {
    case 'i386':
      return ['386', ''];
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      return ['amd64', variant === 'v1' ? '' : variant];
    case 'aarch64':
    case 'arm64':
      return ['arm64', variant === '8' || variant === 'v8' ? '' : variant];
    case 'armhf':
      return ['arm', 'v7'];
    case 'armel':
      return ['arm', 'v6'];
    case 'arm':
      if (variant === '' || variant === '7') return ['arm', 'v7'];
      if (variant === '5' || variant === '6' || variant === '8') return ['arm', 'v' + variant];
      return ['arm', variant];
    default:
      return [arch, variant];
  }
}
