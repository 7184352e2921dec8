-- Deterministic chatts for the getimages scenarios: psql -v rows=N -f seed.sql
-- Each row looks like a real chatt (about 200 bytes of JSON): 40 users, a short message, an id
-- derived from the row number, one row every 2 s from 2025-02-01 12:00 with varying microseconds
-- (every 997th row has none, which isoformat() prints without a fraction), an image URL on
-- odd rows and a video URL on every third row, NULL elsewhere.
SET client_min_messages = warning;
TRUNCATE chatts;
INSERT INTO chatts (username, message, id, time, imageurl, videourl)
SELECT 'tester' || (n % 40),
       'chatt ' || n || ': deterministic benchmark text of an ordinary length',
       md5('bench-chatt-' || n)::uuid,
       timestamp '2025-02-01 12:00:00' + n * interval '2 seconds' + (n % 997) * interval '7 microseconds',
       CASE WHEN n % 2 = 1 THEN 'http://127.0.0.1/media/tester' || (n % 40) || '-1738411200.' || n || '.jpeg' END,
       CASE WHEN n % 3 = 0 THEN 'http://127.0.0.1/media/tester' || (n % 40) || '-1738411200.' || n || '.mp4' END
FROM generate_series(1, :rows) AS n;
VACUUM ANALYZE chatts;
