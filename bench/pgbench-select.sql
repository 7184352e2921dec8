-- pgbench baseline for getimages: the SELECT that chatterd runs (as COPY (SELECT ...) TO STDOUT
-- (FORMAT binary), src/handlers/getimages.cpp), every row fetched the usual way.
SELECT username, message, id, time, imageurl, videourl FROM chatts ORDER BY time ASC;
