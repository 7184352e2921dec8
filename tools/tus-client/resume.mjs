// tus-js-client, the reference tus client, as a phone on a flaky network uses it (t/tus_client.t):
// uploads FILE in CHUNK-byte PATCHes to the tus location, aborts once more than ABORT_AFTER
// bytes are sent (the PATCH in flight is cut off), then resumes with a NEW Upload from the
// stored URL (uploadUrl: HEAD, then PATCH from the server's offset), finishes, and posts the
// upload with videoupload. Prints one JSON line: the offsets, the upload URL, the post's
// answer, the sha256 of FILE.
//   node resume.mjs ENDPOINT POST_URL FILE CHUNK ABORT_AFTER
import { Upload } from 'tus-js-client';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

const [endpoint, postUrl, path, chunk, abortAfter] = process.argv.slice(2);
if (!abortAfter) {
    console.error('usage: node resume.mjs ENDPOINT POST_URL FILE CHUNK ABORT_AFTER');
    process.exit(2);
}
const bytes = readFileSync(path);
const common = {
    chunkSize: Number(chunk),
    retryDelays: null,  // the first Upload: a failure ends the run, the test sees it
    storeFingerprintForResuming: false,
    metadata: { filename: basename(path), filetype: 'video/mp4' },
};

// The first Upload: started, then aborted past abortAfter bytes. Resolves with the bytes the
// client had sent by then and the upload's URL.
function uploadThenAbort() {
    return new Promise((resolve, reject) => {
        const upload = new Upload(bytes, {
            ...common,
            endpoint,
            onProgress(sent) {
                if (sent <= Number(abortAfter) || upload._aborted) return;
                upload.abort().then(() => resolve({ sent, url: upload.url }), reject);
            },
            onSuccess: () => reject(new Error('the upload finished before the abort')),
            onError: reject,
        });
        upload.start();
    });
}

// A new Upload from the stored URL. Resolves with the offset its first accepted PATCH started
// at. As a phone would, it retries (after a fresh HEAD) while the server still holds the upload
// for the PATCH the abort cut off (409 or 423), until it has noticed the broken connection.
function resume(uploadUrl) {
    return new Promise((resolve, reject) => {
        let from = null;
        const upload = new Upload(bytes, {
            ...common,
            uploadUrl,
            retryDelays: [0, 100, 300, 1000, 3000],
            onAfterResponse(req, res) {
                if (from === null && req.getMethod() === 'PATCH' && res.getStatus() === 204)
                    from = Number(req.getHeader('Upload-Offset'));
            },
            onSuccess: () => resolve(from),
            onError: reject,
        });
        upload.start();
    });
}

async function head(url) {
    const res = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
    return { status: res.status, offset: Number(res.headers.get('Upload-Offset')) };
}

try {
    const aborted = await uploadThenAbort();
    const atAbort = await head(aborted.url);
    const resumedFrom = await resume(aborted.url);
    const form = new FormData();
    form.append('username', 'tus-js-client');
    form.append('message', 'posted from a resumed upload');
    form.append('videoupload', aborted.url);
    const post = await fetch(postUrl, { method: 'POST', body: form });
    const afterPost = await head(aborted.url);
    console.log(JSON.stringify({
        size: bytes.length,
        sentAtAbort: aborted.sent,
        serverOffsetAfterAbort: atAbort.offset,
        resumedFrom,
        uploadUrl: aborted.url,
        postStatus: post.status,
        postBody: await post.text(),
        headAfterPost: afterPost.status,
        sha256: createHash('sha256').update(bytes).digest('hex'),
    }));
} catch (error) {
    console.error(`tus-js-client: ${error.stack || error}`);
    process.exit(1);
}
