"""CMCD (httpsem/cmcd.py): encoding as CTA-5004 rounds and orders it, and the edge's parser held to http_sfv."""
from __future__ import annotations

import http_sfv
import pytest
from hypothesis import given, settings, strategies as st

from httpsem.cmcd import CmcdData, CmcdError, encode, from_request, header_fields, parse, query_pair

printable = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=64)
token = st.from_regex(r"[A-Za-z][A-Za-z0-9:/.\-]{0,5}", fullmatch=True)
kbps = st.one_of(st.none(), st.floats(min_value=0, max_value=1e7, allow_nan=False))

cmcd_data = st.builds(
    CmcdData, sid=st.one_of(st.none(), printable), cid=st.one_of(st.none(), printable),
    ot=st.one_of(st.none(), st.sampled_from(["m", "a", "v", "av", "i", "c", "tt", "k", "o"])),
    br_kbps=kbps, bl_ms=kbps, mtp_kbps=kbps, d_ms=kbps, tb_kbps=kbps, dl_ms=kbps, rtp_kbps=kbps,
    nor=st.one_of(st.none(), st.text(max_size=40)), nrr=st.one_of(st.none(), st.from_regex(r"[0-9]{1,6}-[0-9]{0,6}", fullmatch=True)),
    su=st.booleans(), bs=st.booleans(), sf=st.one_of(st.none(), st.sampled_from(["d", "h", "s", "o"])),
    st=st.one_of(st.none(), st.sampled_from(["v", "l"])),
    pr=st.one_of(st.none(), st.floats(min_value=0.1, max_value=4, allow_nan=False)), v=st.sampled_from([1, 2]))


def sfv_dict(text: str) -> dict[str, object]:
    d = http_sfv.Dictionary()
    d.parse(text.encode())
    return {k: (None if not hasattr(m, "value") else float(m.value) if type(m.value).__name__ == "Decimal" else
                str(m.value) if isinstance(m.value, str) else m.value) for k, m in d.items()}


@settings(max_examples=400)
@given(cmcd_data)
def test_every_key_survives_encode_then_parse(data: CmcdData) -> None:
    text = encode(data)
    assert parse(text) == data.as_dict()
    if text:  # an empty payload is no keys (http_sfv refuses an empty dictionary)
        assert sfv_dict(text) == data.as_dict()  # what we send is a structured-field dictionary as RFC 8941 reads it
    keys = [m.split("=")[0] for m in text.split(",")] if text else []
    assert keys == sorted(keys) and " " not in text.replace("\\ ", "") or '"' in text


@settings(max_examples=200)
@given(cmcd_data)
def test_headers_carry_the_same_keys_as_the_query(data: CmcdData) -> None:
    name, value = query_pair(data)
    assert name == "CMCD"
    headers = header_fields(data)
    assert set(headers) <= {"CMCD-Object", "CMCD-Request", "CMCD-Session", "CMCD-Status"}
    assert from_request(None, headers.values()) == (parse(value) if headers else None)


members = st.lists(st.tuples(
    st.from_regex(r"[a-z*][a-z0-9_\-.*]{0,4}", fullmatch=True),
    st.one_of(st.just(None), st.integers(-10**15 + 1, 10**15 - 1), st.from_regex(r"-?[0-9]{1,12}\.[0-9]{1,3}", fullmatch=True),
              printable, token, st.sampled_from(["?0", "?1", ":AAA=:", "(1 2)", "1;a=2"]))), max_size=8)


@settings(max_examples=600)
@given(members, st.sampled_from([",", ", ", " ,"]))
def test_the_fast_parser_agrees_with_http_sfv(pairs: list[tuple[str, object]], sep: str) -> None:
    parts = []
    for key, value in pairs:
        if value is None:
            parts.append(key)
        elif isinstance(value, int):
            parts.append(f"{key}={value}")
        elif isinstance(value, str) and (value[:1] in "?:(" or "." in value and value.lstrip("-")[:1].isdigit()
                                         or ";" in value) and value and not value.startswith('"'):
            parts.append(f"{key}={value}")
        else:
            escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'{key}="{escaped}"')
    text = sep.join(parts)
    if not text:
        return
    try:
        expected = sfv_dict(text)
    except ValueError:
        with pytest.raises(CmcdError):
            parse(text)
        return
    expected = {k: v for k, v in expected.items() if not isinstance(v, (bytes, list)) and v is not None}
    got = parse(text)
    assert {k: v for k, v in got.items() if k in expected} == expected


@pytest.mark.parametrize("text", ["ot=v,", ",ot=v", "ot=v,,br=1", 'sid="unterminated', "BR=1", "br=1.23456",
                                  "sid=\"\x01\"", "br==1", "ot=v br=1"])
def test_malformed_payloads_are_cmcd_errors(text: str) -> None:
    with pytest.raises(CmcdError):
        parse(text)


def test_rounding_and_leaving_out_follow_the_spec() -> None:
    # half up, as Math.round in hls.js and dash.js: 3200.5 -> 3201, 25450 -> 25500
    data = CmcdData(bl_ms=21349, mtp_kbps=25451, dl_ms=49, rtp_kbps=150, br_kbps=3200.5, d_ms=4004.4, tb_kbps=5999.6,
                    nor="../300kbps/00002.m4s", pr=1.0, v=1, su=False, bs=True, ot="v", sf="h", st="v", sid="a b")
    assert encode(data) == ('bl=21300,br=3201,bs,d=4004,dl=0,mtp=25500,nor="..%2F300kbps%2F00002.m4s",'
                            'ot=v,rtp=200,sf=h,sid="a b",st=v,tb=6000')
    assert header_fields(CmcdData(ot="m", su=True, sid="s")) == {"CMCD-Object": "ot=m", "CMCD-Request": "su",
                                                                   "CMCD-Session": 'sid="s"'}
    assert encode(CmcdData()) == "" and header_fields(CmcdData()) == {}
    assert parse('ot=v,br=1,ot=a') == {"ot": "a", "br": 1}  # a repeated key: the last one counts (RFC 8941)


def test_display_strings_and_other_non_cmcd_values_are_left_out() -> None:
    # RFC 9651 display strings may hold any character (a newline too), dates and byte sequences are no CMCD v1 value
    assert parse('sid=%"a%0ab",ot=v') == {"ot": "v"}
    assert parse("at=@1,br=1,b=:AAA=:") == {"br": 1}


def test_a_cmsd_header_with_values_of_other_types_parses_without_them() -> None:
    from httpsem.cmsd import CmsdError, parse_dynamic

    assert parse_dynamic('"e1";etp=@1;mb=300') == [("e1", {"mb": 300})]
    with pytest.raises(CmsdError):
        parse_dynamic('"e1";etp=')
