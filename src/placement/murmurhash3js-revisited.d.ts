/**
 * Types for murmurhash3js-revisited (the package ships none). Only the functions placement uses
 * are declared: the x86 32-bit and x64 128-bit MurmurHash3 over an array of bytes. Both return
 * undefined when input validation rejects the bytes, which is why the results are optional.
 */
declare module 'murmurhash3js-revisited' {
  interface MurmurHash3 {
    x86: {
      /** Unsigned 32-bit MurmurHash3_x86_32 of the bytes. */
      hash32(bytes: ArrayLike<number>, seed?: number): number | undefined;
    };
    x64: {
      /** MurmurHash3_x64_128 of the bytes as 32 lowercase hex digits. */
      hash128(bytes: ArrayLike<number>, seed?: number): string | undefined;
    };
  }
  const murmur: MurmurHash3;
  export default murmur;
}
