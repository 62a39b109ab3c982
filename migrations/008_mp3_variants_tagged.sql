-- MP3 variants made before this version carry no LAME/Info tag (ffmpeg wrote them to a pipe), so a
-- gapless decoder plays the encoder delay and padding too (5.000 s played as 5.184 s by mod_shout).
-- Forget them: the next request makes a tagged one. Their content goes to the sweeper after the
-- blob grace, so downloads already under way finish.
WITH dropped AS (
    DELETE FROM media_variants WHERE format = 'mp3' RETURNING blob_id
)
UPDATE blobs SET orphaned_at = now() WHERE id IN (SELECT blob_id FROM dropped);
