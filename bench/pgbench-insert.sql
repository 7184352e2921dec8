-- pgbench baseline for postchatt and postimages without media: chatterd's INSERT, with the
-- username and message as parameters (-M prepared; -D username=... -D message=...).
INSERT INTO chatts (username, message, id, imageurl, videourl) VALUES (:username, :message, gen_random_uuid(), NULL, NULL);
