// How a health reporter's diagnose and dump values are typed. A leaf module: the CLI imports it
// without the emulator.

/**
 * The type a diagnose or dump value has (our reporters keep them as strings): a decimal number
 * that fits u64 is a number, true/false a flag, the rest a string. devlink's fmsg sends them so
 * typed (NLA_U64, NLA_FLAG, NLA_NUL_STRING), and `devlink -j` prints them so.
 */
export function fmsgValue(v: string): bigint | boolean | string {
  if (/^\d+$/.test(v) && BigInt(v) <= 0xffffffffffffffffn) return BigInt(v);
  if (v === 'true' || v === 'false') return v === 'true';
  return v;
}
