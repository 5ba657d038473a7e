#!/usr/bin/env python3
"""Counts test cases in the test.xml files Bazel wrote for the given test targets.

Prints one line per failed case and finally `N passed, N failed` (the line CI reads). A target
whose test.xml is missing counts as one failure (it did not run or did not report). GoogleTest
binaries report each case; other tests (shell) report one case from Bazel's generated XML.

usage: count_tests.py <bazel-testlogs dir> <target>...
"""
import os
import sys
import xml.etree.ElementTree as ET


def xml_path(testlogs, target):
    # //pkg/sub:name -> <testlogs>/pkg/sub/name/test.xml
    pkg, _, name = target.lstrip("/").partition(":")
    return os.path.join(testlogs, pkg, name, "test.xml")


def main():
    testlogs, targets = sys.argv[1], sys.argv[2:]
    passed = failed = skipped = 0
    for target in targets:
        path = xml_path(testlogs, target)
        if not os.path.exists(path):
            print(f"FAILED {target}: no test.xml (the test did not run)")
            failed += 1
            continue
        root = ET.parse(path).getroot()
        cases = list(root.iter("testcase"))
        if not cases:
            print(f"FAILED {target}: test.xml lists no test case")
            failed += 1
            continue
        for case in cases:
            name = f"{target} {case.get('classname', '')}.{case.get('name', '')}"
            if case.find("failure") is not None or case.find("error") is not None:
                print(f"FAILED {name}")
                failed += 1
            elif case.find("skipped") is not None or case.get("status") == "notrun" \
                    or case.get("result") == "skipped":
                # A skipped test is not a pass.
                print(f"SKIPPED {name}")
                skipped += 1
            else:
                passed += 1
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
