"""One JUnit report for the Python tests of tests/k8s (Bazel reads $XML_OUTPUT_FILE)."""

import os
import traceback
import xml.etree.ElementTree as ET


class Cases:
    def __init__(self, suite):
        self.suite = suite
        self.results = []

    def run(self, name, fn):
        """Runs one case; its exception is its failure."""
        try:
            fn()
            self.results.append((name, None))
            print(f"PASS {name}", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported as the case's
            self.results.append((name, "".join(traceback.format_exception(e))))
            print(f"FAIL {name}\n{self.results[-1][1]}", flush=True)

    def finish(self, expected):
        """Writes the report; the exit code (1 on a failure or fewer cases than expected)."""
        failed = [n for n, e in self.results if e]
        out = os.environ.get("XML_OUTPUT_FILE")
        if out:
            suite = ET.Element("testsuite", name=self.suite, tests=str(len(self.results)),
                               failures=str(len(failed)))
            for n, e in self.results:
                c = ET.SubElement(suite, "testcase", classname=self.suite, name=n)
                if e:
                    ET.SubElement(c, "failure", message=e.splitlines()[-1][:200]).text = e
            root = ET.Element("testsuites")
            root.append(suite)
            ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
        print(f"{len(self.results) - len(failed)} passed, {len(failed)} failed")
        return 1 if failed or len(self.results) < expected else 0
