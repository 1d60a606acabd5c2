from egis_common.secrets import hash_token, lookup_key, new_token, verify_token


def test_a_token_verifies_against_its_hash_only():
    token = new_token("whk_")
    stored = hash_token(token)
    assert token.startswith("whk_") and len(token) > 40
    assert token not in stored
    assert verify_token(token, stored)
    assert not verify_token(token + "x", stored)
    assert not verify_token(new_token(), stored)


def test_hashes_are_salted():
    token = new_token()
    assert hash_token(token) != hash_token(token)


def test_malformed_hashes_never_verify():
    for stored in ("", "sha256$zz$00", "md5$00$00", "plain"):
        assert not verify_token("anything", stored)


def test_lookup_key_is_stable():
    assert lookup_key("t") == lookup_key("t") != lookup_key("u")
