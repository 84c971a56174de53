# Sourced by the CI checks that serve PostgreSQL as production does (.ci/schemathesis,
# .ci/compat): the restricted API role's grants of docs/operations.md, and the URLs
# to reach a database as a given role. Needs PYTHON set.

# database_url URL DATABASE [USER PASSWORD]: URL's server, DATABASE on it, as USER if given.
database_url() {
  "$PYTHON" - "$@" <<'PY'
import sys, urllib.parse as u
url, database, *login = sys.argv[1:]
p = u.urlsplit(url)
netloc = f"{login[0]}:{login[1]}@{p.hostname}:{p.port or 5432}" if login else p.netloc
print(p._replace(netloc=netloc, path="/" + database).geturl())
PY
}

# grant_api_role OWNER_URL DATABASE ROLE: the owner grants ROLE what the API needs.
grant_api_role() {
  psql -q "$1" \
    -c "GRANT CONNECT ON DATABASE $2 TO $3" \
    -c "REVOKE TEMPORARY ON DATABASE $2 FROM PUBLIC" \
    -c "GRANT USAGE ON SCHEMA public TO $3" \
    -c "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO $3" \
    -c "REVOKE INSERT, UPDATE, DELETE ON audit_log, seaql_migrations, user_stats_refreshes FROM $3" \
    -c "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO $3"
}
