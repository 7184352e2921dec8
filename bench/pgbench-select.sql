-- pgbench baseline for getimages: chatterd's SELECT, every row fetched.
SELECT username, message, id, time, imageurl, videourl FROM chatts ORDER BY time ASC;
