/** Temporary incremental checksums until src/s3/checksum.ts lands (then this file goes). */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { Crc32c } from '@aws-crypto/crc32c';
import { Crc64Nvme } from '@aws-sdk/crc64-nvme';
import type { ChecksumAlgorithm } from '../objects/types.ts';

/** An incremental checksum. */
export interface Checksum {
  update(data: Uint8Array): void;
  digestBase64(): string;
}

/** A fresh checksum of `algorithm`. */
export function createChecksum(algorithm: ChecksumAlgorithm): Checksum {
  switch (algorithm) {
    case 'CRC32': {
      let value = 0;
      return {
        update: (d) => {
          value = crc32(d, value);
        },
        digestBase64: () => {
          const b = Buffer.alloc(4);
          b.writeUInt32BE(value >>> 0);
          return b.toString('base64');
        },
      };
    }
    case 'CRC32C': {
      const c = new Crc32c();
      return {
        update: (d) => {
          c.update(d);
        },
        digestBase64: () => {
          const b = Buffer.alloc(4);
          b.writeUInt32BE(c.digest() >>> 0);
          return b.toString('base64');
        },
      };
    }
    case 'CRC64NVME': {
      const c = new Crc64Nvme();
      let out: Uint8Array | undefined;
      return {
        update: (d) => c.update(d),
        digestBase64: () => {
          throw new Error(`sync digest unsupported ${String(out)}`);
        },
      };
    }
    case 'SHA1':
    case 'SHA256': {
      const h = createHash(algorithm === 'SHA1' ? 'sha1' : 'sha256');
      return { update: (d) => h.update(d), digestBase64: () => h.digest('base64') };
    }
  }
}
