#!/usr/bin/python3
"""Writes the seed corpora of the API parsers' fuzz targets:
tests/fuzz/spec.in (job spec JSON), range.in (8-byte little-endian size +
Range header value) and multipart.in ("Content-Type\\n" + body).
Run from anywhere; files are rewritten in place."""
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))


def write(d, name, data):
    os.makedirs(os.path.join(here, d), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(here, d, name), "wb") as f:
        f.write(data)


spec = {
    "ok_empty": "{}",
    "ok_speedup": '{"speedup": 4}',
    "ok_all": '{"speedup": 2.5, "method": "linear", "samples_per_input": 5, "seed": 7,'
              ' "rank_multiple": 8, "exclude": ["conv1"], "holdout": 0.2}',
    "ok_ranks": '{"ranks": {"conv1": 4, "conv2": 8}}',
    "ok_ranks_speedup": '{"ranks": {"a": 1}, "speedup": 3}',
    "ok_unicode_name": '{"exclude": ["\\u00e9t\\u00e9"]}',
    "bad_unknown": '{"speedup": 2, "sped": 3}',
    "bad_type_speedup": '{"speedup": "4"}',
    "bad_speedup_1": '{"speedup": 1}',
    "bad_speedup_nan": '{"speedup": NaN}',
    "bad_method": '{"method": "magic"}',
    "bad_ranks_array": '{"ranks": [1, 2]}',
    "bad_rank_zero": '{"ranks": {"c": 0}}',
    "bad_rank_float": '{"ranks": {"c": 1.5}}',
    "bad_rank_dup": '{"ranks": {"c": 1, "c": 2}}',
    "bad_dup_member": '{"seed": 1, "seed": 2}',
    "bad_seed_neg": '{"seed": -1}',
    "bad_seed_huge": '{"seed": 1e300}',
    "bad_holdout_1": '{"holdout": 1}',
    "bad_exclude_str": '{"exclude": "conv1"}',
    "bad_exclude_num": '{"exclude": [1]}',
    "bad_exclude_empty_name": '{"exclude": [""]}',
    "bad_not_object": '[1,2,3]',
    "bad_truncated": '{"speedup": 4',
    "bad_empty": '',
    "bad_nested_deep": '{"ranks": ' + '[' * 2000 + ']' * 2000 + '}',
    "bad_trailing": '{"speedup": 4} x',
    "bad_nul": '{"exclude": ["a\\u0000b"]}',
    "bad_control_name": '{"ranks": {"a\\nb": 2}}',
    "bad_long_name": '{"exclude": ["' + 'x' * 300 + '"]}',
}
for k, v in spec.items():
    write("spec.in", k + ".json", v)


def rng(size, value):
    return struct.pack("<Q", size) + value.encode()


ranges = {
    "closed": (1000, "bytes=0-99"), "open": (1000, "bytes=500-"),
    "suffix": (1000, "bytes=-100"), "suffix_big": (10, "bytes=-100"),
    "past_end": (1000, "bytes=1000-"), "last_byte": (1000, "bytes=999-999"),
    "clamped": (1000, "bytes=900-5000"), "zero_suffix": (1000, "bytes=-0"),
    "empty_repr": (0, "bytes=0-"), "reversed": (1000, "bytes=5-1"),
    "multi": (1000, "bytes=0-1,5-6"), "units": (1000, "items=0-1"),
    "spaces": (1000, "bytes= 1-2 "), "overflow": (1000, "bytes=99999999999999999999999-"),
    "just_dash": (1000, "bytes=-"), "upper": (1000, "BYTES=1-2"),
    "junk": (1000, "bytes=1-2x"), "huge_size": (1 << 47, "bytes=140737488355327-"),
}
for k, (s, v) in ranges.items():
    write("range.in", k, rng(s, v))

B = "XyZ"
CT = "multipart/form-data; boundary=" + B + "\n"


def part(name, data, filename=None, ctype=None):
    h = 'Content-Disposition: form-data; name="%s"' % name
    if filename is not None:
        h += '; filename="%s"' % filename
    h += "\r\n"
    if ctype:
        h += "Content-Type: %s\r\n" % ctype
    return "--" + B + "\r\n" + h + "\r\n" + data + "\r\n"


end = "--" + B + "--\r\n"
mp = {
    "ok_curl": CT + part("model", "\x00\x01onnx\r\n--Xy", "m.onnx", "application/octet-stream")
    + part("calibration", "npy", "c.npy") + part("spec", '{"speedup":4}') + end,
    "ok_preamble_epilogue": CT + "preamble\r\n" + part("a", "1") + end + "epilogue",
    "ok_empty_part": CT + part("a", "") + end,
    "ok_quoted_boundary": 'multipart/form-data; boundary="XyZ"\n' + part("a", "x") + end,
    "ok_lwsp_after_boundary": CT + "--XyZ  \r\n" + 'Content-Disposition: form-data; name="a"\r\n\r\nv\r\n' + end,
    "ok_cr_in_data": CT + part("a", "\r\r\n\r\n-\r\n--X\r\n--XyY") + end,
    "ok_escaped_name": CT + '--XyZ\r\nContent-Disposition: form-data; name="a\\"b"\r\n\r\nv\r\n' + end,
    "bad_no_boundary_param": "multipart/form-data\n" + part("a", "1") + end,
    "bad_wrong_type": "text/plain; boundary=XyZ\n" + part("a", "1") + end,
    "bad_boundary_long": "multipart/form-data; boundary=" + "b" * 71 + "\n",
    "bad_boundary_char": "multipart/form-data; boundary=a\x01b\n",
    "bad_truncated": CT + part("a", "12345"),
    "bad_no_parts": CT + "nothing here",
    "bad_no_disposition": CT + "--XyZ\r\nContent-Type: x\r\n\r\nv\r\n" + end,
    "bad_no_name": CT + "--XyZ\r\nContent-Disposition: form-data\r\n\r\nv\r\n" + end,
    "bad_not_form_data": CT + '--XyZ\r\nContent-Disposition: attachment; name="a"\r\n\r\nv\r\n' + end,
    "bad_header_lf_only": CT + '--XyZ\r\nContent-Disposition: form-data; name="a"\n\nv\r\n' + end,
    "bad_too_many_parts": CT + "".join(part("p%d" % i, "x") for i in range(10)) + end,
    "bad_huge_header": CT + "--XyZ\r\nX-Pad: " + "a" * 5000 + "\r\n\r\n" + end,
    "bad_junk_after_boundary": CT + "--XyZjunk\r\n" + end,
    "bad_unterminated_quote": CT + '--XyZ\r\nContent-Disposition: form-data; name="a\r\n\r\nv\r\n' + end,
    "bad_dup_name_param": CT + '--XyZ\r\nContent-Disposition: form-data; name="a"; name="b"\r\n\r\nv\r\n' + end,
    "bad_nul_header": CT + '--XyZ\r\nContent-Disposition: form-data; name="a\x00"\r\n\r\nv\r\n' + end,
    "bad_folded_header": CT + '--XyZ\r\nContent-Disposition: form-data;\r\n name="a"\r\n\r\nv\r\n' + end,
}
for k, v in mp.items():
    write("multipart.in", k, v.encode("latin-1"))

H = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
tokens = {
    "ok_two": "alice %s\nbob %s\n" % (H, H.replace("b", "c")),
    "ok_comments_crlf": "# c\r\n\r\n  alice\t%s  \r\n" % H,
    "ok_empty": "",
    "ok_no_final_newline": "alice " + H,
    "bad_dup_hash": "alice %s\nbob %s\n" % (H, H),
    "bad_short_hash": "alice 1234\n",
    "bad_nonhex": "alice " + "g" * 64 + "\n",
    "bad_tenant_chars": "al/ice %s\n" % H,
    "bad_tenant_long": "a" * 70 + " " + H + "\n",
    "bad_extra_field": "alice %s x\n" % H,
    "bad_no_hash": "alice\n",
    "bad_nul": "alice\x00 %s\n" % H,
}
for k, v in tokens.items():
    write("tokens.in", k, v)
