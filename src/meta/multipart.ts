/**
 * Multipart upload rules shared by the proposer (ObjectService, to answer early and to build the
 * object) and by apply (to decide atomically against the parts actually stored), plus the
 * ListMultipartUploads scan. Pure except for the iterator the scan reads.
 *
 * https://docs.aws.amazon.com/AmazonS3/latest/API/API_CompleteMultipartUpload.html
 */
import type { ClassicLevel } from 'classic-level';
import { assert } from '../util/assert.ts';
import { META_ERR_ENTITY_TOO_SMALL, META_ERR_INVALID_PART, META_ERR_INVALID_PART_ORDER } from './errors.ts';
import { afterPrefix, decodeUploadKey, justAfter, uploadKey, uploadPrefix } from './keys.ts';
import { scanRolledUp } from './listing.ts';
import type { CompletePart, PartRecord, UploadListPage, UploadListQuery, UploadRecord } from './types.ts';

/** S3's minimum size of every part but the last. */
export const PART_SIZE_BYTES_MIN = 5 * 1024 * 1024;

/** A completion's verdict: the stored parts it names, in order, or the S3 rule it breaks. */
export type CompletionCheck = { ok: true; parts: PartRecord[] } | { ok: false; code: string; message: string; meta?: Record<string, unknown> };

/**
 * Checks a CompleteMultipartUpload part list against the stored parts, in AWS's order:
 * ascending part numbers (InvalidPartOrder), each part stored with the ETag (and checksum, when
 * sent) the client names (InvalidPart), every part but the last at least `partSizeBytesMin`
 * (EntityTooSmall).
 */
export function checkCompletion(requested: readonly CompletePart[], stored: ReadonlyMap<number, PartRecord>, partSizeBytesMin: number): CompletionCheck {
  assert(requested.length > 0, 'completion without parts');
  for (let i = 1; i < requested.length; i++) {
    if (requested[i]!.partNumber <= requested[i - 1]!.partNumber) {
      return { ok: false, code: META_ERR_INVALID_PART_ORDER, message: 'The list of parts was not in ascending order.' };
    }
  }
  const parts: PartRecord[] = [];
  for (const want of requested) {
    const have = stored.get(want.partNumber);
    if (!have || have.etag !== want.etag.toLowerCase() || (want.checksum !== undefined && have.checksum?.value !== want.checksum)) {
      return {
        ok: false,
        code: META_ERR_INVALID_PART,
        message: 'One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part\'s entity tag.',
        meta: { partNumber: want.partNumber, etag: want.etag },
      };
    }
    parts.push(have);
  }
  for (let i = 0; i < parts.length - 1; i++) {
    if (parts[i]!.sizeBytes < partSizeBytesMin) {
      return {
        ok: false,
        code: META_ERR_ENTITY_TOO_SMALL,
        message: 'Your proposed upload is smaller than the minimum allowed size',
        meta: { partNumber: parts[i]!.partNumber, proposedSize: parts[i]!.sizeBytes, minSizeAllowed: partSizeBytesMin, etag: parts[i]!.etag },
      };
    }
  }
  return { ok: true, parts };
}

/** True when two completion part lists name the same parts with the same ETags. */
export function sameCompletion(a: readonly { partNumber: number; etag: string }[], b: readonly { partNumber: number; etag: string }[]): boolean {
  return a.length === b.length && a.every((p, i) => p.partNumber === b[i]!.partNumber && p.etag.toLowerCase() === b[i]!.etag.toLowerCase());
}

/**
 * Lists one page of in-progress uploads of `bucket` in S3's order (key, then initiation), with
 * prefix, delimiter roll-up, key-marker / upload-id-marker and a page size.
 */
export async function listUploads(db: ClassicLevel<Buffer, string>, bucket: string, query: UploadListQuery): Promise<UploadListPage> {
  assert(Number.isInteger(query.maxUploads) && query.maxUploads >= 0, 'maxUploads must be a non-negative integer');
  const page: UploadListPage = { uploads: [], commonPrefixes: [], isTruncated: false };
  const base = uploadPrefix(bucket);
  const encodedPrefix = Buffer.concat([base, Buffer.from(query.prefix, 'utf8')]);
  const markerBytes = Buffer.from(query.keyMarker, 'utf8');
  let lower: Buffer = encodedPrefix;
  if (query.keyMarker !== '') {
    // With an upload-id-marker, later uploads of the marker key come first; without one, the
    // listing starts at the next key (AWS: key-marker alone excludes the marker key itself).
    const after =
      query.uploadIdMarker !== ''
        ? justAfter(uploadKey(bucket, query.keyMarker, query.uploadIdMarker))
        : afterPrefix(Buffer.concat([base, markerBytes, Buffer.of(0)]));
    if (Buffer.compare(after, lower) > 0) lower = after;
  }
  page.isTruncated = await scanRolledUp(
    db,
    { base, lower, upper: afterPrefix(encodedPrefix), prefix: query.prefix, delimiter: query.delimiter, after: query.keyMarker, max: query.maxUploads },
    (encoded) => decodeUploadKey(bucket, encoded).key,
    (item) => {
      if (item.kind === 'prefix') {
        page.commonPrefixes.push(item.prefix);
        page.nextKeyMarker = item.prefix;
        page.nextUploadIdMarker = '';
        return;
      }
      page.uploads.push({ key: item.key, upload: JSON.parse(item.value) as UploadRecord });
      page.nextKeyMarker = item.key;
      page.nextUploadIdMarker = decodeUploadKey(bucket, item.encoded).uploadId;
    },
  );
  return page;
}
