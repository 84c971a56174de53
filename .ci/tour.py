"""A user's tour of a running Bookworm, every step of which must answer 2xx.

Usage: python3 .ci/tour.py BASE_URL ADMIN_EMAIL PASSWORD TAG
The admin account must exist (api create-admin). TAG keeps the accounts and titles of
one run apart from another's on the same database.
"""
import json
import sys
import urllib.error
import urllib.request

base, admin_email, password, tag = sys.argv[1:5]


def call(method, path, body=None, token=None, expect=(200, 201, 204)):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read().decode()
    if status not in expect:
        sys.exit(f"tour {tag}: {method} {path} answered {status}: {text}")
    print(f"tour {tag}: {method} {path} {status}")
    return json.loads(text) if text else None


admin = call("POST", "/auth/login", {"email": admin_email, "password": password})["token"]
author = call("POST", "/authors", {"name": f"Octavia Butler {tag}"}, admin)["id"]
book = call("POST", "/books", {"author_id": author, "title": f"Kindred {tag}"}, admin)["id"]
email = f"reader-{tag}@example.com"
call("POST", "/auth/register", {"email": email, "password": password, "display_name": "Reader"})
reader = call("POST", "/auth/login", {"email": email, "password": password})["token"]
call("GET", "/books?limit=5")
call("GET", f"/books/{book}")
call("POST", f"/books/{book}/reviews", {"rating": 5, "body": "Still good on the new schema"}, reader)
call("PUT", f"/me/shelf/{book}", {"status": "reading"}, reader)
call("GET", "/me/shelf", token=reader)
call("GET", f"/search/books?q=Kindred")
call("GET", "/me", token=reader)
