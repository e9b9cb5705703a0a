/*
 * npy.h - a safe reader and writer for NumPy .npy files.
 *
 * DESIGN. A .npy file is untrusted input (calibration batches, reference
 * outputs), so the reader validates everything before it allocates: the
 * magic, the version, the header length (at most LR_NPY_MAX_HEADER bytes),
 * the header dict (parsed by a strict tokenizer, never evaluated), the dtype
 * (an allowlist), the shape (rank, signs, overflow) and finally that the
 * data length is EXACTLY what the shape and dtype need. For files the size
 * comes from fstat(), so a header that declares a huge shape fails before a
 * single data byte is allocated. Data is read straight into the tensor
 * buffer when no conversion is needed ('<f4' or '<i8' in C order on a
 * little-endian host), otherwise it is converted in fixed-size chunks; the
 * file is never held in memory twice. Fortran-order arrays are transposed
 * into C order while converting. Every refusal returns LR_ENPY (or a
 * negative errno for I/O) with one sentence in the lr_msg that starts with
 * the file name and names the problem, e.g.
 *   calib.npy: data is truncated: expected 602112 bytes for shape
 *   [1,3,224,224] '<f4', found 1000
 * The writer emits what numpy itself writes for version 1.0 and is atomic:
 * it writes a temporary file in the target directory, fsyncs it and renames
 * it over the target, so a crash leaves either the old file or the new one.
 *
 * Conversion table (descr in the file -> tensor dtype):
 *   '<f4'                    -> LR_DT_FLOAT, bit-exact
 *   '<f8'                    -> LR_DT_FLOAT, rounded to nearest; values
 *                               beyond the float32 range become +-inf
 *   '<f2'                    -> LR_DT_FLOAT, exact (subnormals, +-inf and
 *                               NaN included)
 *   '|u1' ('<u1' '=u1' '>u1') -> LR_DT_FLOAT, exact (0 .. 255)
 *   '<i8'                    -> LR_DT_INT64, unchanged
 * For the multi-byte types '=' is accepted as '<' on a little-endian host.
 * lr_npy_read_typed() instead keeps every type as its own lr_dtype:
 *   '<f4' float, '<f8' double, '<f2' float16, '|b1' bool (normalised to
 *   0/1), '|u1' uint8, '|i1' int8, '<u2' uint16, '<i2' int16, '<u4'
 *   uint32, '<i4' int32, '<u8' uint64, '<i8' int64.
 * Everything else is refused: big-endian data ('>' or '!'), object arrays
 * ('O'), structured dtypes (a list descr), strings, unicode, void, complex,
 * datetime, and (outside lr_npy_read_typed) bool and the integer types
 * other than the ones above.
 */
#ifndef LR_NPY_H
#define LR_NPY_H

#include <stddef.h>

#include "model/lr.h"
#include "model/tensor.h"

#define LR_NPY_MAX_HEADER 10000 /* largest header dict accepted, in bytes */

/*
 * Reads the .npy file at `path` into a new tensor (C order, dtype per the
 * table above). On success returns 0 and *out is owned by the caller (free
 * with lr_tensor_free()). On failure *out is NULL and the return value is
 * LR_ENPY for a malformed or unsupported file, a negative errno when the
 * file cannot be opened or read, LR_ENOMEM when allocation fails; `msg`
 * (may be NULL) names the file and the problem.
 */
int lr_npy_read(const char *path, lr_tensor **out, lr_msg *msg);

/*
 * Same as lr_npy_read(), except that a file needing no conversion ('<f4' or
 * '<i8', C order, data 64-byte aligned as numpy writes it) is mapped
 * read-only instead of read: pages load on demand and the kernel may drop
 * them again, so a calibration set larger than memory still works. The
 * tensor's data must not be written. Other files are read and converted.
 * Caveat: the file must not be truncated while mapped.
 */
int lr_npy_map(const char *path, lr_tensor **out, lr_msg *msg);

/*
 * Same as lr_npy_read(), but the tensor keeps the file's element type (the
 * second table above) instead of becoming float32/int64. This is how
 * `lowrank run` reads graph inputs; calibration data goes through
 * lr_npy_read()/lr_npy_map() and stays float32.
 */
int lr_npy_read_typed(const char *path, lr_tensor **out, lr_msg *msg);

/* lr_npy_read_typed() for the `len` bytes at `buf`, as lr_npy_read_mem(). */
int lr_npy_read_mem_typed(const void *buf, size_t len, const char *name,
			  lr_tensor **out, lr_msg *msg);

/*
 * Same as lr_npy_read() for the `len` bytes at `buf` (buf may be NULL when
 * len is 0). `name` (may be NULL) is used only in messages, e.g. the file
 * name the bytes came from. The result never aliases `buf`.
 */
int lr_npy_read_mem(const void *buf, size_t len, const char *name,
		    lr_tensor **out, lr_msg *msg);

/*
 * Writes `t` to `path` as a version 1.0 .npy file in its own type ('<f4'
 * for LR_DT_FLOAT, '<i8' for LR_DT_INT64, '|b1' for LR_DT_BOOL, ... as in
 * the lr_npy_read_typed() table), C order, header padded so the data starts at a
 * multiple of 64 bytes. The bytes go to a temporary file in the same
 * directory that is fsynced and renamed over `path`; on failure the
 * temporary file is removed and `path` is untouched. Returns 0, LR_EINVAL
 * for a shape-only tensor (data == NULL), or a negative errno for I/O
 * errors, with `msg` naming the path.
 */
int lr_npy_write(const char *path, const lr_tensor *t, lr_msg *msg);

#endif /* LR_NPY_H */
