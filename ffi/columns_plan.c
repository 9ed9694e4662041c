// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The column writer of every program without its own (ffi/columns_connection.c is the
 * connection program's): records go from the ring (or a drained buffer) straight into the
 * store's typed-array columns, driven by a copy plan that src/programs/copy_plan.ts builds from
 * the object's BTF. Each step of the plan reads one field at a record offset and writes one
 * column's row in one of a few conversions; a step may read another field when a flag byte of
 * the record is zero (an owner that is not known) and may write zero when a u32 of the record
 * is zero. A string field (a command, an interface name) is not interned here: the writer hands
 * back one entry per run of rows whose string is the same, and JavaScript interns each run's
 * string once and fills the run's rows. */
#include <stdint.h>
#include <string.h>
#include <linux/bpf.h>

#include "shim.h"

enum ebpf_copy_kind {
	EBPF_COPY_U8 = 1, /* u8 -> u8 */
	EBPF_COPY_U16 = 2, /* u16 -> u16 */
	EBPF_COPY_U32 = 3, /* u32 -> u32 */
	EBPF_COPY_U64_F64 = 4, /* u64 -> double */
	EBPF_COPY_BOOT_MS = 5, /* u64 boot-time ns -> double Unix ms (offset_ms added; 0 -> NaN) */
	EBPF_COPY_BYTES8 = 6, /* 8 bytes -> 8 bytes a row */
	EBPF_COPY_BYTES16 = 7, /* 16 bytes -> 16 bytes a row */
	EBPF_COPY_U16_IS = 8, /* u16 == arg & 0xffff -> u8 (arg >> 16) & 0xff, else arg >> 24 */
	EBPF_COPY_STR16 = 9, /* 16 bytes -> a string run when they differ from the row before */
};

#define EBPF_COPY_NONE 0xffffffffu
#define EBPF_COPY_ZERO 0xfffffffeu /* as `alt`: the value is zero when the flag byte is zero */

/* One step of a copy plan (src/programs/copy_plan.ts writes them: keep both in step). */
struct ebpf_copy_step {
	uint32_t kind;
	uint32_t src; /* offset of the field in the record */
	uint32_t alt; /* the field read when the flag byte is zero (NONE: src anyway; ZERO: 0) */
	uint32_t flag; /* offset of a u8 flag (NONE: always src) */
	/* offset of a u32 that, when zero, makes the value zero (NONE: never); with a flag, only
	 * when the flag byte is zero (a fallback that has nothing to fall back on) */
	uint32_t zero_if;
	uint32_t arg; /* EBPF_COPY_U16_IS: what it compares and writes */
	uint64_t dst; /* the column (EBPF_COPY_STR16: unused; its rows are JavaScript's) */
};

_Static_assert(sizeof(struct ebpf_copy_step) == 32, "copy step layout");

/* One run of a string step: rows from `row` (counted from the call's first slot) until the
 * next run of the same step have the string `s`. */
struct ebpf_str_run {
	uint32_t row;
	uint32_t step;
	uint8_t s[16];
};

_Static_assert(sizeof(struct ebpf_str_run) == 24, "string run layout");

#define HDR 8 /* BPF_RINGBUF_HDR_SZ */
#define MAX_STR_STEPS 8

static inline uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static inline uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

/* The offset a step reads: its alternative when its flag byte is zero; ZERO when the value
 * is zero (no field is read). */
static inline uint32_t source_of(const struct ebpf_copy_step *st, const uint8_t *rec)
{
	int fallback = st->flag != EBPF_COPY_NONE && !rec[st->flag];

	if (st->zero_if != EBPF_COPY_NONE && (fallback || st->flag == EBPF_COPY_NONE) &&
	    rd32(rec + st->zero_if) == 0)
		return EBPF_COPY_ZERO;
	return fallback && st->alt != EBPF_COPY_NONE ? st->alt : st->src;
}

static const uint8_t zeros[16];

/* The bytes a step reads from a record (zeros when its value is zero). */
static inline const uint8_t *field_of(const struct ebpf_copy_step *st, const uint8_t *rec)
{
	uint32_t at = source_of(st, rec);

	return at == EBPF_COPY_ZERO ? zeros : rec + at;
}

/* Rows are written a column at a time, CHUNK records at once: each step's loop is short and
 * the same every iteration, and writes one column's rows one after another. */
#define CHUNK 256

/* One column's rows [s0, s0 + n) from records recs[0, n): `expr` converts the bytes at `p`. A
 * step with no flag and no zero test reads its field at a fixed offset. */
#define COLUMN(type, expr)                                                                 \
	do {                                                                               \
		type *d = (type *)(uintptr_t)st->dst + s0;                                 \
		if (plain) {                                                               \
			for (r = 0; r < n; r++) {                                          \
				const uint8_t *p = recs[r] + st->src;                      \
				d[r] = (expr);                                             \
			}                                                                  \
		} else {                                                                   \
			for (r = 0; r < n; r++) {                                          \
				const uint8_t *p = field_of(st, recs[r]);                  \
				d[r] = (expr);                                             \
			}                                                                  \
		}                                                                          \
	} while (0)

static inline uint16_t rd16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static inline double boot_ms(const uint8_t *p, double offset_ms)
{
	uint64_t ns = rd64(p);

	return ns == 0 ? __builtin_nan("") : (double)ns / 1e6 + offset_ms;
}

static inline uint8_t u16_is(const struct ebpf_copy_step *st, const uint8_t *p)
{
	return rd16(p) == (st->arg & 0xffff) ? (st->arg >> 16) & 0xff : st->arg >> 24;
}

/* Every step but the string ones, for rows [s0, s0 + n) from records recs[0, n). */
static void write_columns(const struct ebpf_copy_step *steps, uint32_t nsteps,
			  const uint8_t *const *recs, uint32_t n, uint32_t s0, double offset_ms)
{
	uint32_t i, r;

	for (i = 0; i < nsteps; i++) {
		const struct ebpf_copy_step *st = &steps[i];
		int plain = st->flag == EBPF_COPY_NONE && st->zero_if == EBPF_COPY_NONE;

		switch (st->kind) {
		case EBPF_COPY_U8:
			COLUMN(uint8_t, p[0]);
			break;
		case EBPF_COPY_U16:
			COLUMN(uint16_t, rd16(p));
			break;
		case EBPF_COPY_U32:
			COLUMN(uint32_t, rd32(p));
			break;
		case EBPF_COPY_U64_F64:
			COLUMN(double, (double)rd64(p));
			break;
		case EBPF_COPY_BOOT_MS:
			COLUMN(double, boot_ms(p, offset_ms));
			break;
		case EBPF_COPY_U16_IS:
			COLUMN(uint8_t, u16_is(st, p));
			break;
		case EBPF_COPY_BYTES8:
			for (r = 0; r < n; r++)
				memcpy((uint8_t *)(uintptr_t)st->dst + (size_t)(s0 + r) * 8,
				       field_of(st, recs[r]), 8);
			break;
		case EBPF_COPY_BYTES16:
			for (r = 0; r < n; r++)
				memcpy((uint8_t *)(uintptr_t)st->dst + (size_t)(s0 + r) * 16,
				       field_of(st, recs[r]), 16);
			break;
		default: /* EBPF_COPY_STR16: runs, made as the records were walked */
			break;
		}
	}
}

int32_t ebpf_plan_decode(struct ebpf_ring *ring, const uint8_t *buf, uint32_t len,
			 const struct ebpf_copy_step *steps, uint32_t nsteps, uint32_t record_size,
			 uint32_t slot, uint32_t room, double offset_ms, struct ebpf_str_run *runs,
			 uint32_t runs_cap, uint32_t *out)
{
	const uint8_t *data = buf;
	uint64_t avail = len, off = 0;
	uint32_t rows = 0, nruns = 0, rejected = 0, empty = 0, nstr = 0, pending = 0, i;
	const uint8_t *last[MAX_STR_STEPS] = { 0 };
	uint32_t str_steps[MAX_STR_STEPS];
	const uint8_t *recs[CHUNK];

	for (i = 0; i < nsteps; i++) {
		if (steps[i].kind != EBPF_COPY_STR16)
			continue;
		if (nstr == MAX_STR_STEPS) {
			out[0] = out[1] = out[3] = 0;
			out[2] = 1;
			return -22; /* -EINVAL */
		}
		str_steps[nstr++] = i;
	}
	if (ring)
		data = ebpf_ring_peek(ring, &avail);
	for (;;) {
		const uint8_t *rec;
		uint32_t hdr, size, k, need;

		if (avail - off < HDR) {
			/* bytes past the data's end are still there (see ebpf_ring_peek) */
			empty = !ring || ebpf_ring_pending(ring) <= off;
			break;
		}
		hdr = __atomic_load_n((const uint32_t *)(data + off), __ATOMIC_ACQUIRE);
		if (hdr & BPF_RINGBUF_BUSY_BIT) {
			empty = 1; /* still being written: it and everything after wait */
			break;
		}
		size = hdr & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
		if (HDR + ((size + 7) & ~7u) > avail - off)
			break; /* it wraps round the data's end: the next call has it whole */
		if (hdr & BPF_RINGBUF_DISCARD_BIT) {
			off += HDR + ((size + 7) & ~7u);
			continue;
		}
		if (rows == room)
			break;
		rec = data + off + HDR;
		if (size < record_size) {
			rejected++;
			off += HDR + ((size + 7) & ~7u);
			continue;
		}
		/* the runs this record starts: when they do not fit, it waits for the next call */
		need = 0;
		for (k = 0; k < nstr; k++)
			if (!last[k] || memcmp(last[k], field_of(&steps[str_steps[k]], rec), 16))
				need++;
		if (nruns + need > runs_cap)
			break;
		for (k = 0; k < nstr; k++) {
			const uint8_t *p = field_of(&steps[str_steps[k]], rec);

			if (!last[k] || memcmp(last[k], p, 16)) {
				/* runs are written in row order, one step after another */
				struct ebpf_str_run *run = &runs[nruns++];

				run->row = rows;
				run->step = str_steps[k];
				memcpy(run->s, p, 16);
			}
			last[k] = p;
		}
		recs[pending++] = rec;
		rows++;
		off += HDR + ((size + 7) & ~7u);
		if (pending == CHUNK) {
			write_columns(steps, nsteps, recs, pending, slot + rows - pending, offset_ms);
			pending = 0;
		}
	}
	if (pending)
		write_columns(steps, nsteps, recs, pending, slot + rows - pending, offset_ms);
	if (ring)
		ebpf_ring_release(ring, off);
	out[0] = nruns;
	out[1] = rejected;
	out[2] = empty;
	out[3] = (uint32_t)off;
	return (int32_t)rows;
}
