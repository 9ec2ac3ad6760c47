#!/bin/bash
# The shell answer: inotifywait piped into a loop that runs the mysql client once per file.
# Written the way a careful admin would: quotes and backslashes in names are escaped for SQL
# (the common version without that breaks on the first apostrophe); URLs are not percent-encoded.
# Reads the service's environment variables; prints "Watches established." on stderr when ready.
export MYSQL_PWD=$MYSQL_PASS
sql_quote() { local s=${1//\\/\\\\}; REPLY=${s//\'/\'\'}; }   # no subshell per call
sql_quote "$CLIENT_VIDEO_DIR"; root=$REPLY
inotifywait -m -r -e close_write,moved_to --format '%w%f' "$CLIENT_VIDEO_DIR" |
while IFS= read -r f; do
    case "${f,,}" in *.mp4|*.avi|*.mov|*.mkv) ;; *) continue ;; esac
    sql_quote "$f"; path=$REPLY
    sql_quote "$NGINX_BASE_URL/${f#"$BASE_PATH"/}"; url=$REPLY
    mysql --default-character-set=utf8mb4 -h "$MYSQL_HOST" -P "$MYSQL_PORT" -u "$MYSQL_USER" \
        "$MYSQL_DB_NAME" -e "INSERT INTO videos (main_dir, des_video_path, status, des_url) VALUES ('$root', '$path', 1, '$url')"
done
