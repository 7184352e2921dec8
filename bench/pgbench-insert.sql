-- pgbench baseline for postchatt and postimages without media: chatterd's INSERT as it sends it
-- (src/handlers/insert_chatt.cpp), with the username, message and deadline as parameters
-- (-M prepared; -D username=... -D message=... -D deadline=<epoch seconds, far ahead>).
INSERT INTO chatts (username, message, id, imageurl, videourl) SELECT :username, :message, gen_random_uuid(), NULL, NULL WHERE clock_timestamp() < to_timestamp(:deadline);
