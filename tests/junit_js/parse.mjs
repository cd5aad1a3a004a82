// Reads a JUnit XML file with junit2json (an npm JUnit consumer, on xml2js
// in strict mode) and prints what it understood as JSON on stdout:
// the suites' counts and every testcase's classname, name, time and
// verdict, for tests/report_it.py to compare with the run's own records.
// Exit 1 when the file does not parse.
import { readFileSync } from 'node:fs';
import { parse } from 'junit2json';

const file = process.argv[2];
let doc;
try {
  doc = await parse(readFileSync(file, 'utf8'));
} catch (e) {
  console.error(`${file}: not JUnit XML junit2json can read: ${e.message}`);
  process.exit(1);
}
const suites = doc.testsuite ?? [];
const cases = [];
for (const s of suites)
  for (const c of s.testcase ?? [])
    cases.push({
      classname: c.classname,
      name: c.name,
      time: c.time,
      failure: (c.failure ?? []).map((f) => ({ message: f.message, type: f.type, inner: f.inner ?? '' })),
      error: (c.error ?? []).map((f) => ({ message: f.message, type: f.type, inner: f.inner ?? '' })),
      skipped: (c.skipped ?? []).length,
      systemOut: (c['system-out'] ?? []).join(''),
    });
console.log(JSON.stringify({
  tests: doc.tests, failures: doc.failures, errors: doc.errors, skipped: doc.skipped,
  suites: suites.map((s) => ({ name: s.name, tests: s.tests, failures: s.failures,
    errors: s.errors, skipped: s.skipped, time: s.time, timestamp: s.timestamp })),
  cases,
}));
