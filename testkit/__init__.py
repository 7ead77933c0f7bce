"""What the tests and the benches both build and run: X-ray and film pictures, crafted and DICOM
files, the senders' request bodies, and the child processes (gunicorn, qcluster, a file host).

The rule (checked by ``tests/test_layers.py``): ``tests/`` and ``bench/`` may import this package;
it imports neither, and ``tests/`` never imports ``bench/`` — so a bench can change without a test
noticing, and the suite never carries a bench's imports."""
