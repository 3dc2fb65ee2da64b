import base64
import copy
import json
import random

import pytest

from domain.storage_events.parser import MalformedEvent, ObjectCreated, parse_events
from tests.helpers import EVENT_FIXTURES, ROOT

FIXTURES = EVENT_FIXTURES

MINIO_PUT_KEY = "users/42/files/0b9f6c2e-3d1a-4c55-9a0e-5f2d7c1e8a11/quarterly report.pdf"
MINIO_MULTIPART_KEY = "users/42/files/c41d2a90-6b7e-4f0a-8e33-91a5d6f2b7c4/site backup.tar.gz"


def load(name: str) -> object:
    return json.loads((FIXTURES / name).read_text())


def s3_body(*records: dict[str, object]) -> dict[str, object]:
    return {"Records": list(records)}


def s3_record(
    key: str,
    event_name: str = "s3:ObjectCreated:Put",
    bucket: str = "uploads",
    size: object = 10,
    etag: object = "d41d8cd98f00b204e9800998ecf8427e",
) -> dict[str, object]:
    return {
        "eventName": event_name,
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": size, "eTag": etag}},
    }


def seaweed_event(
    path: str,
    event_type: str = "create",
    size: int = 7,
    etag: str | None = "abc123",
    is_directory: bool = False,
) -> dict[str, object]:
    extended = (
        {} if etag is None else {"Seaweed-X-Amz-ETag": base64.b64encode(etag.encode()).decode()}
    )
    entry = {
        "name": path.rsplit("/", 1)[-1],
        "is_directory": is_directory,
        "attributes": {"file_size": size},
        "extended": extended,
    }
    return {"event_type": event_type, "key": path, "message": {"new_entry": entry}}


def test_minio_put() -> None:
    events = parse_events(load("minio-put-event.json"), "uploads", "users")

    assert events == [
        ObjectCreated("uploads", MINIO_PUT_KEY, 482113, "7d865e959b2466918c9863afca942d0f")
    ]


def test_minio_multipart() -> None:
    events = parse_events(load("minio-multipart-event.json"), "uploads", "users")

    assert events == [
        ObjectCreated(
            "uploads", MINIO_MULTIPART_KEY, 167772160, "3b1f9e0c2a7d4e58b6c90f1d2e3a4b5c-4"
        )
    ]


def test_aws_put_decodes_plus_as_space() -> None:
    events = parse_events(load("aws-s3-put-event.json"), "uploads", "users")

    assert events == [
        ObjectCreated("uploads", MINIO_PUT_KEY, 482113, "7d865e959b2466918c9863afca942d0f")
    ]


def test_seaweedfs_list_skips_directories_and_multipart_parts() -> None:
    events = parse_events(load("seaweedfs-filer-events.json"), "filestore", "uploads")

    assert events == [
        ObjectCreated("filestore", "uploads/hooked.bin", 1234, "478754c15512919dba45a1a258d611cf"),
        ObjectCreated("filestore", "uploads/mp.bin", 100, "de7612559023e4cfb152348d06a889c1-1"),
    ]


def test_seaweedfs_single_event_object() -> None:
    body = seaweed_event("/buckets/filestore/uploads/a b+c.bin")

    assert parse_events(body, "filestore", "uploads") == [
        ObjectCreated("filestore", "uploads/a b+c.bin", 7, "abc123")
    ]


def test_seaweedfs_update_with_new_entry_counts_as_created() -> None:
    body = seaweed_event("/buckets/filestore/uploads/x.bin", event_type="update")

    assert parse_events(body, "filestore", "uploads") == [
        ObjectCreated("filestore", "uploads/x.bin", 7, "abc123")
    ]


def test_seaweedfs_without_etag_or_size() -> None:
    body = {
        "event_type": "create",
        "key": "/buckets/filestore/uploads/x.bin",
        "message": {"new_entry": {"name": "x.bin"}},
    }

    assert parse_events(body, "filestore", "uploads") == [
        ObjectCreated("filestore", "uploads/x.bin", None, None)
    ]


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("users%2F42%2Fa%2Bb.txt", "users/42/a+b.txt"),
        ("users%2F42%2Fa+b.txt", "users/42/a b.txt"),
        ("users/42/caf%C3%A9%20x.txt", "users/42/café x.txt"),
    ],
)
def test_s3_key_is_url_decoded(encoded: str, decoded: str) -> None:
    events = parse_events(s3_body(s3_record(encoded)), "uploads", "users")

    assert [event.key for event in events] == [decoded]


@pytest.mark.parametrize(
    "event_name",
    [
        "s3:ObjectCreated:Put",
        "s3:ObjectCreated:Post",
        "s3:ObjectCreated:Copy",
        "s3:ObjectCreated:CompleteMultipartUpload",
        "ObjectCreated:Put",
        "ObjectCreated:CompleteMultipartUpload",
    ],
)
def test_s3_created_event_names(event_name: str) -> None:
    body = s3_body(s3_record("users%2F1%2Fa", event_name=event_name))

    assert len(parse_events(body, "uploads", "users")) == 1


@pytest.mark.parametrize(
    "event_name",
    [
        "s3:ObjectRemoved:Delete",
        "ObjectRemoved:Delete",
        "s3:ObjectRemoved:DeleteMarkerCreated",
        "s3:ObjectAccessed:Get",
        "s3:ObjectCreated:PutTagging",
        "s3:ObjectCreated:PutRetention",
        "ObjectCreated:",
        "",
    ],
)
def test_s3_other_event_names_ignored(event_name: str) -> None:
    body = s3_body(s3_record("users%2F1%2Fa", event_name=event_name, size=None, etag=None))

    assert parse_events(body, "uploads", "users") == []


@pytest.mark.parametrize("event_type", ["delete", "rename", "something-new"])
def test_seaweedfs_other_event_types_ignored(event_type: str) -> None:
    body = {
        "event_type": event_type,
        "key": "/buckets/filestore/uploads/x.bin",
        "message": {"old_entry": {"name": "x.bin"}},
    }

    assert parse_events(body, "filestore", "uploads") == []


def test_seaweedfs_update_without_new_entry_ignored() -> None:
    body = {"event_type": "update", "key": "/buckets/filestore/uploads/x.bin", "message": {}}

    assert parse_events(body, "filestore", "uploads") == []


@pytest.mark.parametrize(
    "path",
    [
        "/buckets/filestore",
        "/buckets/filestore/",
        "/buckets/other/uploads/x.bin",
        "/buckets/filestore/.uploads/abc/0001.part",
        "/topics/filestore/uploads/x.bin",
        "/filestore/uploads/x.bin",
        "",
    ],
)
def test_seaweedfs_paths_outside_bucket_objects_ignored(path: str) -> None:
    assert parse_events(seaweed_event(path), "filestore", "uploads") == []


def test_seaweedfs_directory_ignored() -> None:
    body = seaweed_event("/buckets/filestore/uploads/sub", is_directory=True)

    assert parse_events(body, "filestore", "uploads") == []


def test_other_bucket_ignored() -> None:
    body = s3_body(s3_record("users%2F1%2Fa", bucket="other"), s3_record("users%2F1%2Fb"))

    assert [event.key for event in parse_events(body, "uploads", "users")] == ["users/1/b"]


@pytest.mark.parametrize(
    "key",
    ["other%2F1%2Fa", "usersX%2F1%2Fa", "users", "users%2F", "%2Fusers%2F1%2Fa", "a%2Fusers%2Fb"],
)
def test_other_prefix_ignored(key: str) -> None:
    assert parse_events(s3_body(s3_record(key)), "uploads", "users") == []


def test_seaweedfs_string_prefix_that_is_not_the_folder_ignored() -> None:
    body = [
        seaweed_event("/buckets/filestore/uploadsX/x.bin"),
        seaweed_event("/buckets/filestore/uploads/y.bin"),
    ]

    assert [event.key for event in parse_events(body, "filestore", "uploads")] == ["uploads/y.bin"]


@pytest.mark.parametrize("key_prefix", ["users", "users/", "/users/"])
def test_key_prefix_slashes_are_ignored(key_prefix: str) -> None:
    body = s3_body(s3_record("users%2F1%2Fa"), s3_record("usersX%2F1%2Fa"))

    assert [event.key for event in parse_events(body, "uploads", key_prefix)] == ["users/1/a"]


def test_nested_prefix() -> None:
    body = s3_body(s3_record("users%2F1%2Fa"), s3_record("users%2F2%2Fa"))

    assert [event.key for event in parse_events(body, "uploads", "users/2")] == ["users/2/a"]


def test_duplicates_collapsed_in_order() -> None:
    body = s3_body(
        s3_record("users%2Fb", etag="2"),
        s3_record("users%2Fa", etag="1"),
        s3_record("users%2Fb", etag="2", event_name="ObjectCreated:Copy"),
        s3_record("users/a", etag="1"),
        s3_record("users%2Fa", etag="3"),
    )

    events = parse_events(body, "uploads", "users")

    assert [(event.key, event.etag) for event in events] == [
        ("users/b", "2"),
        ("users/a", "1"),
        ("users/a", "3"),
    ]


def test_seaweedfs_duplicates_collapsed() -> None:
    event = seaweed_event("/buckets/filestore/uploads/x.bin")

    assert len(parse_events([event, event, copy.deepcopy(event)], "filestore", "uploads")) == 1


def test_etag_quotes_stripped_and_empty_etag_is_none() -> None:
    body = s3_body(s3_record("users%2Fa", etag='"abc-2"'), s3_record("users%2Fb", etag=""))

    assert [event.etag for event in parse_events(body, "uploads", "users")] == ["abc-2", None]


def test_s3_size_and_etag_optional() -> None:
    record: dict[str, object] = {
        "eventName": "s3:ObjectCreated:Put",
        "s3": {"bucket": {"name": "uploads"}, "object": {"key": "users/a"}},
    }

    assert parse_events(s3_body(record), "uploads", "users") == [
        ObjectCreated("uploads", "users/a", None, None)
    ]


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"Records": []},
        {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "uploads"},
    ],
)
def test_empty_batches(body: object) -> None:
    assert parse_events(body, "uploads", "users") == []


MALFORMED: list[object] = [
    None,
    42,
    1.5,
    True,
    "x",
    "",
    {},
    {"EventName": "s3:ObjectCreated:Put", "Key": "uploads/users/a"},
    {"Event": "s3:SomethingElse"},
    {"Records": "x"},
    {"Records": None},
    {"Records": {}},
    {"Records": [{}]},
    {"Records": [1]},
    {"Records": [None]},
    {"Records": [{"eventName": "s3:ObjectCreated:Put"}]},
    {"Records": [{"eventName": "s3:ObjectCreated:Put", "s3": []}]},
    {
        "Records": [
            {"eventName": "s3:ObjectCreated:Put", "s3": {"bucket": {}, "object": {"key": 1}}}
        ]
    },
    {"Records": [{"eventName": "s3:ObjectCreated:Put", "s3": {"bucket": {"name": "u"}}}]},
    {"Records": [{"s3": {"bucket": {"name": "uploads"}, "object": {"key": "users/a"}}}]},
    {"Records": [{"eventName": 7, "s3": {"bucket": {"name": "uploads"}, "object": {"key": "k"}}}]},
    s3_body(s3_record("users/a", size="12")),
    s3_body(s3_record("users/a", size=1.0)),
    s3_body(s3_record("users/a", size=True)),
    s3_body(s3_record("users/a", size=-1)),
    s3_body(s3_record("users/a", etag=12)),
    s3_body(s3_record("users/a"), s3_record("users/b", size="x")),
    {"event_type": "create"},
    {"event_type": "create", "key": 5},
    {"event_type": None, "key": "/buckets/filestore/uploads/a"},
    {"event_type": "create", "key": "/buckets/filestore/uploads/a"},
    {"event_type": "create", "key": "/buckets/filestore/uploads/a", "message": "x"},
    {"event_type": "create", "key": "/buckets/filestore/uploads/a", "message": {"new_entry": 1}},
    [1],
    [{"Records": []}],
    [seaweed_event("/buckets/filestore/uploads/a"), {}],
    [seaweed_event("/buckets/filestore/uploads/a"), []],
]


def _seaweed_with_entry(**entry: object) -> dict[str, object]:
    return {
        "event_type": "create",
        "key": "/buckets/filestore/uploads/a",
        "message": {"new_entry": {"name": "a", **entry}},
    }


MALFORMED += [
    _seaweed_with_entry(is_directory="yes"),
    _seaweed_with_entry(attributes=[]),
    _seaweed_with_entry(attributes={"file_size": "1234"}),
    _seaweed_with_entry(attributes={"file_size": -3}),
    _seaweed_with_entry(extended="x"),
    _seaweed_with_entry(extended={"Seaweed-X-Amz-ETag": 5}),
    _seaweed_with_entry(extended={"Seaweed-X-Amz-ETag": "not base64!"}),
    _seaweed_with_entry(extended={"Seaweed-X-Amz-ETag": "/w=="}),
    _seaweed_with_entry(extended={"Seaweed-X-Amz-ETag": "é"}),
]


@pytest.mark.parametrize("body", MALFORMED, ids=[repr(body)[:60] for body in MALFORMED])
def test_malformed_bodies(body: object) -> None:
    with pytest.raises(MalformedEvent) as excinfo:
        parse_events(body, "filestore", "uploads")

    assert str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)


VOCABULARY = [
    "Records",
    "eventName",
    "s3",
    "bucket",
    "object",
    "name",
    "key",
    "size",
    "eTag",
    "event_type",
    "message",
    "new_entry",
    "is_directory",
    "attributes",
    "file_size",
    "extended",
    "Seaweed-X-Amz-ETag",
    "Event",
    "s3:ObjectCreated:Put",
    "ObjectCreated:Copy",
    "s3:TestEvent",
    "create",
    "update",
    "uploads",
    "filestore",
    "users%2Fa",
    "users/a%ZZ",
    "/buckets/filestore/uploads/a",
    "/buckets/filestore/.uploads/a",
    "YWJj",
    "=",
    "",
]


def random_json(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(9 if depth < 5 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, -1, 1, 2**70, rng.randrange(-1000, 1000)])
    if kind == 3:
        return rng.choice([0.0, -2.5, 1e308, float(rng.randrange(100))])
    if kind in (4, 5):
        return rng.choice(VOCABULARY)
    if kind == 6:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(VOCABULARY): random_json(rng, depth + 1) for _ in range(rng.randrange(5))}


def mutate(rng: random.Random, value: object) -> object:
    if isinstance(value, dict) and value and rng.random() < 0.85:
        key = rng.choice(list(value))
        mutated = dict(value)
        action = rng.random()
        if action < 0.15:
            del mutated[key]
        elif action < 0.35:
            mutated[key] = random_json(rng)
        else:
            mutated[key] = mutate(rng, value[key])
        return mutated
    if isinstance(value, list) and value and rng.random() < 0.85:
        index = rng.randrange(len(value))
        mutated_list = list(value)
        mutated_list[index] = mutate(rng, value[index])
        return mutated_list
    return random_json(rng)


def assert_parses_or_malformed(body: object, bucket: str, key_prefix: str) -> None:
    try:
        events = parse_events(body, bucket, key_prefix)
    except MalformedEvent:
        return
    assert isinstance(events, list)
    for event in events:
        assert isinstance(event, ObjectCreated)
        assert event.bucket == bucket
        assert event.key.startswith(key_prefix + "/")
        assert event.size is None or (isinstance(event.size, int) and event.size >= 0)
        assert event.etag is None or isinstance(event.etag, str)


def test_random_json_only_raises_malformed_event() -> None:
    rng = random.Random(0)
    for _ in range(500):
        assert_parses_or_malformed(random_json(rng), "filestore", "uploads")


def test_mutated_fixtures_only_raise_malformed_event() -> None:
    rng = random.Random(0)
    fixtures = [
        (load("minio-put-event.json"), "uploads", "users"),
        (load("minio-multipart-event.json"), "uploads", "users"),
        (load("aws-s3-put-event.json"), "uploads", "users"),
        (load("seaweedfs-filer-events.json"), "filestore", "uploads"),
    ]
    for _ in range(300):
        body, bucket, key_prefix = rng.choice(fixtures)
        for _ in range(rng.randrange(1, 4)):
            body = mutate(rng, body)
        assert_parses_or_malformed(body, bucket, key_prefix)


def test_repo_fixtures_match_shared_fixtures() -> None:
    shared = ROOT.parent / "shared" / "fixtures"
    if not shared.is_dir():
        pytest.skip("shared fixtures are not checked out next to the repository")
    for path in sorted(FIXTURES.glob("*.json")):
        assert json.loads(path.read_text()) == json.loads((shared / path.name).read_text())
