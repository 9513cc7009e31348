"""One TensorFlow process serving a test module's BAIR work, so that TensorFlow is imported once per
module instead of once per call, and never in the PyTorch test process (the two can crash together).

    python tests/tensorflow_worker.py

Reads one JSON request per line on stdin and answers with one JSON line on stdout:
    {"write": [[OUT_DIR, SPEC, ...], ...]}   tests/bair_fixture.py's record files -> {"returncode": 0}
    {"convert": [ARG, ...]}                  svgvp.data.convert_bair.main(ARGS) -> {"returncode", "stderr"}
"""
import contextlib
import io
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from svgvp.data import convert_bair  # noqa: E402
from tests.bair_fixture import write_root  # noqa: E402  (imports TensorFlow)


def serve(requests, answers):
    for line in requests:
        request = json.loads(line)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            if "write" in request:
                for out_dir, *specs in request["write"]:
                    write_root(out_dir, specs)
                code = 0
            else:
                try:
                    code = convert_bair.main(request["convert"])
                except SystemExit as stop:  # what the script's process would have exited with
                    code = stop.code
        answers.write(json.dumps({"returncode": code, "stderr": err.getvalue()}) + "\n")
        answers.flush()


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
