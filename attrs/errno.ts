// The errno values netlink answers with (Linux x86_64), their symbolic names (all of them, from
// os.constants: the one errnoName of the project) and strerror texts for the common ones.
import { constants as osConstants } from 'os';

export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EIO = 5;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const EMFILE = 24;
export const ENOSPC = 28;
export const ERANGE = 34;
export const ENODATA = 61;
export const EPROTO = 71;
export const EMSGSIZE = 90;
export const EOPNOTSUPP = 95;
export const EADDRINUSE = 98;
export const ENOBUFS = 105;
export const ETIMEDOUT = 110;
export const ECONNREFUSED = 111;

/** Symbolic names of every errno this platform's Node knows (os.constants.errno), by number. */
const NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** strerror() texts as glibc prints them, for CLI and error messages. */
const TEXTS: Record<number, string> = {
  [EPERM]: 'Operation not permitted', [ENOENT]: 'No such file or directory',
  [EINTR]: 'Interrupted system call', [EIO]: 'Input/output error',
  [EAGAIN]: 'Resource temporarily unavailable', [ENOMEM]: 'Cannot allocate memory',
  [EBUSY]: 'Device or resource busy', [EEXIST]: 'File exists', [ENODEV]: 'No such device',
  [EINVAL]: 'Invalid argument', [EMFILE]: 'Too many open files', [ENOSPC]: 'No space left on device',
  [ERANGE]: 'Numerical result out of range', [ENODATA]: 'No data available',
  [EPROTO]: 'Protocol error', [EMSGSIZE]: 'Message too long',
  [EOPNOTSUPP]: 'Operation not supported', [EADDRINUSE]: 'Address already in use',
  [ENOBUFS]: 'No buffer space available', [ETIMEDOUT]: 'Connection timed out',
  [ECONNREFUSED]: 'Connection refused',
};

/** 'ECONNREFUSED' for 111 or -111; `E<n>` for a number no name is known for. */
export const errnoName = (e: number): string => NAMES.get(Math.abs(e)) ?? `E${Math.abs(e)}`;
export const strerror = (e: number): string => TEXTS[Math.abs(e)] ?? `Unknown error ${Math.abs(e)}`;
