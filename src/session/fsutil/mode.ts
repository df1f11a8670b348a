/** POSIX st_mode → Go os.FileMode bits, as fsutil sends them. */

export const ModeDir = 0x80000000;
export const ModeSymlink = 0x08000000;
export const ModeDevice = 0x04000000;
export const ModeNamedPipe = 0x02000000;
export const ModeSocket = 0x01000000;
export const ModeSetuid = 0x00800000;
export const ModeSetgid = 0x00400000;
export const ModeCharDevice = 0x00200000;
export const ModeSticky = 0x00100000;
export const ModeIrregular = 0x00080000;
/** Bits that make an entry anything but a regular file. */
export const ModeType = (ModeDir | ModeSymlink | ModeNamedPipe | ModeSocket | ModeDevice | ModeCharDevice | ModeIrregular) >>> 0;

const S_IFMT = 0o170000;

export function goFileMode(stMode: number): number {
  let m = stMode & 0o777;
  switch (stMode & S_IFMT) {
    case 0o040000:
      m |= ModeDir;
      break;
    case 0o120000:
      m |= ModeSymlink;
      break;
    case 0o060000:
      m |= ModeDevice;
      break;
    case 0o020000:
      m |= ModeDevice | ModeCharDevice;
      break;
    case 0o010000:
      m |= ModeNamedPipe;
      break;
    case 0o140000:
      m |= ModeSocket;
      break;
    default:
      break;
  }
  if (stMode & 0o4000) m |= ModeSetuid;
  if (stMode & 0o2000) m |= ModeSetgid;
  if (stMode & 0o1000) m |= ModeSticky;
  return m >>> 0;
}

/** A regular file: the receiver may request its content. */
export function isRequestable(goMode: number): boolean {
  return (goMode & ModeType) >>> 0 === 0;
}
