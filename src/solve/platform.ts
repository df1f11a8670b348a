/** Platform strings as containerd's platforms package reads and normalises them (what buildx sends). */
import { UsageError } from "../errors.js";

/**
 * Checks a platform as containerd's platforms.Parse reads it: OS/ARCH or
 * OS/ARCH/VARIANT (or one of them alone), each part letters, digits, '_',
 * '.' or '-', the OS with an optional "(version)"; "local" is buildx's name
 * for the daemon's own. `what` names the setting in the error.
 */
export function checkPlatform(platform: string, what: string): void {
  if (platform === "local") return;
  const parts = platform.split("/");
  const ok = parts.length <= 3 && parts.every((p, i) => (i === 0 ? /^[A-Za-z0-9_.-]+(\([A-Za-z0-9_.-]+\))?$/ : /^[A-Za-z0-9_.-]+$/).test(p));
  if (!ok) throw new UsageError(`invalid ${what} ${JSON.stringify(platform)}: use OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8`);
}

const KNOWN_OS = new Set([
  "aix",
  "android",
  "darwin",
  "dragonfly",
  "freebsd",
  "illumos",
  "ios",
  "js",
  "linux",
  "netbsd",
  "openbsd",
  "plan9",
  "solaris",
  "wasip1",
  "windows",
]);

/** An architecture and variant as containerd's normalizeArch gives them. */
function normalizeArch(arch: string, variant: string): [string, string] {
  arch = arch.toLowerCase();
  variant = variant.toLowerCase();
  switch (arch) {
    case "i386":
      return ["386", ""];
    case "x86_64":
    case "x86-64":
    case "amd64":
      return ["amd64", variant === "v1" ? "" : variant];
    case "aarch64":
    case "arm64":
      if (variant === "8" || variant === "v8" || variant === "v8.0") return ["arm64", ""];
      if (variant === "9" || variant === "9.0" || variant === "v9.0") return ["arm64", "v9"];
      return ["arm64", variant];
    case "armhf":
      return ["arm", "v7"];
    case "armel":
      return ["arm", "v6"];
    case "arm":
      if (variant === "" || variant === "7") return ["arm", "v7"];
      if (variant === "5" || variant === "6" || variant === "8") return ["arm", `v${variant}`];
      return ["arm", variant];
    default:
      return [arch, variant];
  }
}

/**
 * A checked platform normalised and formatted as buildx sends it
 * (platforms.Parse then Format): lower case, `macos` = darwin, aliases
 * such as x86_64 and aarch64 to their Go names, variants that are the
 * default dropped (arm64/v8, amd64/v1) or added (arm = arm/v7). A lone
 * architecture gets `linux`, a lone OS this machine's architecture
 * (`hostArch`, Go's name).
 */
export function normalizePlatform(platform: string, hostArch: string = hostPlatform().split("/")[1]!): string {
  const parts = platform.split("/");
  let os = parts[0]!.toLowerCase();
  let arch: string;
  let variant = "";
  if (parts.length === 1) {
    const osName = os.replace(/\(.*\)$/, "");
    if (KNOWN_OS.has(osName) || osName === "macos") {
      arch = hostArch;
    } else {
      arch = os;
      os = "linux";
    }
  } else {
    arch = parts[1]!;
    variant = parts[2] ?? "";
  }
  if (os === "macos") os = "darwin";
  const [a, v] = normalizeArch(arch, variant);
  return v ? `${os}/${a}/${v}` : `${os}/${a}`;
}

/** Go's names for Node's architectures (the variant where Go's default needs one). */
const GO_ARCH: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm/v7",
  ia32: "386",
  ppc64: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
  loong64: "loong64",
};

/** This machine's platform as containerd's platforms.DefaultSpec() names it (what buildx's --platform local means). */
export function hostPlatform(arch: string = process.arch): string {
  return `linux/${GO_ARCH[arch] ?? arch}`;
}
