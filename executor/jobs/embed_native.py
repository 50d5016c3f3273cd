# Build step: writes a C++ source holding the guest runner's native module (zlib, then base64),
# which guest.cpp puts into the runner's script (executor/jobs/guest_runner.py, NATIVE_BLOB).
#   embed_native.py MODULE.so OUT.cpp
import base64
import sys
import zlib

blob = base64.b64encode(zlib.compress(open(sys.argv[1], "rb").read(), 9)).decode()
with open(sys.argv[2], "w") as out:
    out.write("// Generated from %s by executor/jobs/embed_native.py: do not edit.\n" % sys.argv[1].rsplit("/", 1)[-1])
    out.write('#include "executor/jobs/guest.hpp"\n\nnamespace corral::jobs {\n\n')
    out.write("const char* guest_native_blob() {\n  return\n")
    for i in range(0, len(blob), 96):
        out.write('      "%s"\n' % blob[i:i + 96])
    out.write("      ;\n}\n\n}  // namespace corral::jobs\n")
