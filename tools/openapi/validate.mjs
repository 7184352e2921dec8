// Checks docs/openapi.yaml, and answers of a live chatterd against it (t/openapi.t).
//   node validate.mjs DOCUMENT              swagger-parser validates the document (OpenAPI 3.1)
//   node validate.mjs DOCUMENT ANSWERS      and each answer of ANSWERS, a JSON array of
//                                           {name, method, path, status, headers, body}
//                                           (headers lower-cased, body the text received):
//                                           prints "ok NAME" or "not ok NAME: why" per answer.
// An answer matches when the document has its path and method, declares its status, holds its
// required headers (each valid against its schema), declares its Content-Type, and its body is
// valid against that content's schema (JSON Schema 2020-12, as OpenAPI 3.1 uses it, by Ajv).
// Exits 1 when the document is invalid or any answer does not match.
import SwaggerParser from '@apidevtools/swagger-parser';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { readFileSync } from 'node:fs';

const [documentPath, answersPath] = process.argv.slice(2);
if (!documentPath) {
    console.error('usage: node validate.mjs DOCUMENT [ANSWERS]');
    process.exit(2);
}

let api;
try {
    api = await SwaggerParser.validate(documentPath);
} catch (err) {
    console.error(`${documentPath}: invalid: ${err.message}`);
    process.exit(1);
}
console.log(`${documentPath}: valid OpenAPI ${api.openapi}, ${Object.keys(api.paths).length} paths`);
if (!answersPath) process.exit(0);

// strict: false lets OpenAPI's own annotations (example, contentMediaType) through.
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);

function findPathItem(path) {
    if (api.paths[path]) return api.paths[path];
    for (const [template, item] of Object.entries(api.paths)) {
        const pattern = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+');
        if (new RegExp(`^${pattern}$`).test(path)) return item;
    }
    return undefined;
}

function findResponse(operation, status) {
    const responses = operation.responses ?? {};
    return responses[String(status)] ?? responses[`${String(status)[0]}XX`] ?? responses.default;
}

// The declared media type that covers a Content-Type: the same type and parameters, the same
// type, or a wildcard such as image/*.
function findContent(content, contentType) {
    const normal = (type) => type.toLowerCase().replace(/\s+/g, '');
    const full = normal(contentType ?? '');
    const base = full.split(';')[0];
    const keys = Object.keys(content);
    const key = keys.find((k) => normal(k) === full)
        ?? keys.find((k) => normal(k).split(';')[0] === base)
        ?? keys.find((k) => k.endsWith('/*') && base.startsWith(normal(k).slice(0, -1)));
    return key === undefined ? undefined : content[key];
}

function schemaErrors(schema, value, what = 'body') {
    const validate = ajv.compile(schema);
    if (validate(value)) return undefined;
    return ajv.errorsText(validate.errors, { dataVar: what });
}

function check(answer) {
    const pathItem = findPathItem(answer.path);
    if (!pathItem) return `no path ${answer.path}`;
    const operation = pathItem[answer.method.toLowerCase()];
    if (!operation) return `no operation ${answer.method} ${answer.path}`;
    const response = findResponse(operation, answer.status);
    if (!response) return `status ${answer.status} is not declared for ${answer.method} ${answer.path}`;
    for (const [name, header] of Object.entries(response.headers ?? {})) {
        const value = answer.headers[name.toLowerCase()];
        if (value === undefined) {
            if (header.required) return `required header ${name} is missing`;
            continue;
        }
        const why = header.schema && schemaErrors(header.schema, value, `header ${name}`);
        if (why) return why;
    }
    const bodyless = answer.method === 'HEAD' || answer.status === 204 || answer.status === 304;
    if (!response.content) {
        return bodyless || answer.body === '' ? undefined : 'a body where none is declared';
    }
    const contentType = answer.headers['content-type'];
    const media = findContent(response.content, contentType);
    if (!media) return `Content-Type ${contentType} is not declared for status ${answer.status}`;
    if (bodyless || !media.schema) return undefined;
    let body = answer.body;
    if (/^application\/([\w.+-]+\+)?json/i.test(contentType)) {
        try {
            body = JSON.parse(answer.body);
        } catch (err) {
            return `body is not JSON: ${err.message}`;
        }
    }
    return schemaErrors(media.schema, body);
}

const answers = JSON.parse(readFileSync(answersPath, 'utf8'));
let failed = 0;
for (const answer of answers) {
    const why = check(answer);
    if (why === undefined) {
        console.log(`ok ${answer.name}`);
    } else {
        failed++;
        console.log(`not ok ${answer.name}: ${why}`);
    }
}
process.exit(failed ? 1 : 0);
