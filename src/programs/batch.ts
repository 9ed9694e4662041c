/**
 * One way for the manager to drain every program: a {@linkcode BatchDecoder}. Programs that
 * decode one record at a time (a {@linkcode RecordDecoder}) get one here that copies the ring's
 * records into a buffer (one FFI call per batch) and walks them.
 *
 * @module
 */

import type {
  BatchDecoder,
  BatchResult,
  DecoderContext,
  Program,
  RecordDecoder,
  RecordSource,
} from "./program.ts";
import type { ColumnSpec } from "../store/mod.ts";

/** Bytes the ring's records are copied into per call. */
const DRAIN_BUFFER_BYTES = 1 << 20;
/** Rounds of copying per drain before other work gets a turn. */
const MAX_ROUNDS = 64;

let drainBuffer: { buf: Uint8Array<ArrayBuffer>; view: DataView } | undefined;

function newDrainBuffer() {
  const buf = new Uint8Array(DRAIN_BUFFER_BYTES);
  return { buf, view: new DataView(buf.buffer) };
}

/** The program's batch decoder, or one made from its record decoder. */
export function batchDecoderOf<S extends ColumnSpec>(
  program: Program<S>,
  ctx: DecoderContext<S>,
): BatchDecoder {
  if (program.batchDecoder) return program.batchDecoder(ctx);
  if (!program.decoder) throw new TypeError(`program ${program.name} has no decoder`);
  return recordBatches(program.decoder(ctx));
}

/** A batch decoder that calls `decode` on every record, counting those it throws on. */
export function recordBatches(decode: RecordDecoder): BatchDecoder {
  return (source: RecordSource) => {
    const result: BatchResult = { events: 0, rejected: 0 };
    const walk = (bytes: Uint8Array, v: DataView, used: number) => {
      for (let off = 0; off + 8 <= used;) {
        const size = v.getUint32(off, true);
        try {
          decode(v, bytes, off + 8, size);
          result.events++;
        } catch (err) {
          result.rejected++;
          result.error ??= String(err);
        }
        off += 8 + ((size + 7) & ~7);
      }
    };
    if (source instanceof Uint8Array) {
      walk(
        source,
        new DataView(source.buffer, source.byteOffset, source.byteLength),
        source.length,
      );
    } else {
      // one buffer for every program: drains run one at a time, on Deno's thread
      const { buf, view } = drainBuffer ??= newDrainBuffer();
      for (let round = 0; round < MAX_ROUNDS; round++) {
        const used = source.drain(buf);
        if (used <= 0) break;
        walk(buf, view, used);
        if (used < buf.length / 2) break;
      }
    }
    decode.flush?.();
    return result;
  };
}
