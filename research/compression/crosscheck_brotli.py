# Cross-check: reference C brotli (PyPI 'brotli') sizes for the dumped payloads.
# python3 -m venv .venv && .venv/bin/pip install brotli && .venv/bin/python crosscheck_brotli.py
import brotli, glob, os
for f in sorted(glob.glob(os.path.join(os.path.dirname(__file__), 'payloads/*.json'))):
    d = open(f, 'rb').read()
    r = [len(brotli.compress(d, quality=q, lgwin=16)) for q in (9, 10, 11)]
    print(os.path.basename(f), len(d), "C brotli q9/q10/q11 w16:", r)
