"""The AQDEF parser: hand-written .dfq/.dfd/.dfx files in, characteristics and values out."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.aqdef import AqdefError, Flag, parse, parse_pair
from ingest.aqdef_model import decode, parse_number, parse_time

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "aqdef"
F, C = "\x14", "\x0f"  # fields of one characteristic (DC4); characteristics of one part


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _dfq(*lines: str) -> bytes:
    return "\r\n".join(lines).encode("cp1252")


def test_a_compact_file_gives_each_characteristic_its_fields_and_each_part_a_value_line() -> None:
    result = parse(_fixture("compact.dfq"))
    assert (result.encoding, result.declared, result.problems) == ("cp1252", 3, ())
    [part] = result.parts
    assert (part.number, part.description) == ("SH-100", "Welle Ø25 gedreht")
    d1, length, ra = result.characteristics
    assert (d1.index, d1.number, d1.description, d1.unit) == (1, "D1", "Shaft diameter", "mm")
    assert (d1.lsl, d1.usl, d1.nominal, d1.line) == (24.95, 25.05, 25.0, 5)
    assert (length.description, ra.lsl, ra.usl) == ("Länge", None, 0.8)
    first = [v for v in result.values if v.line == 21]
    assert [(v.characteristic, v.value) for v in first] == [(1, 25.001), (2, 120.02), (3, 0.41)]
    assert {(v.time, v.batch, v.part_id) for v in first} == {
        (datetime(2026, 11, 2, 8, 0), "L-4711", None)
    }
    assert len(result.values) == 17  # 6 parts x 3, one roughness not measured


def test_an_empty_value_means_the_characteristic_was_not_measured_on_that_part() -> None:
    result = parse(_dfq("K0100 3", "K2001/1 A", "K2001/2 B", "K2001/3 C",
                        f"1.5{F}0{C}{C}3.5{F}0", f"{C}2.5{C}"))  # fmt: skip
    assert [(v.line, v.characteristic, v.value) for v in result.values] == [
        (5, 1, 1.5), (5, 3, 3.5), (6, 2, 2.5)
    ]  # fmt: skip
    assert result.problems == ()


def test_value_line_fields_follow_the_fixed_aqdef_order() -> None:
    fields = ["25.1", "0", "02.11.2026/08:00:00", "E1", "LOT", "2", "OP7", "M3", "P", "G9"]
    [value] = parse(_dfq("K0100 1", "K2001/1 A", F.join(fields))).values
    assert dict(value.fields) == dict(
        zip(("K0001", "K0002", "K0004", "K0005", "K0006",
             "K0007", "K0008", "K0010", "K0011", "K0012"), fields, strict=True)
    )  # fmt: skip
    assert value.batch == "LOT"


@pytest.mark.parametrize(
    ("attribute", "flag"),
    [("", Flag.OK), ("0", Flag.OK), ("255", Flag.EXCLUDED), ("256", Flag.EXCLUDED),
     ("1", Flag.FLAGGED), ("8", Flag.FLAGGED)],
)  # fmt: skip
def test_the_k0002_attribute_marks_a_value_excluded_or_flagged(attribute: str, flag: Flag) -> None:
    [value] = parse(_dfq("K0100 1", "K2001 A", f"1.0{F}{attribute}{F}02.11.2026/08:00")).values
    assert value.flag is flag


def test_one_kfield_per_line_with_slash_zero_fields_and_decimal_commas() -> None:
    result = parse(_fixture("kfields.dfq"))
    assert (result.encoding, result.problems) == ("utf-8", ())
    assert [c.unit for c in result.characteristics] == ["mm", "mm"]  # K2142/0: for all
    assert result.characteristics[0].lsl == 24.95
    got = [(v.line, v.characteristic, v.value, v.time, v.flag, v.batch, v.part_id)
           for v in result.values]  # fmt: skip
    at = datetime(2026, 11, 2, 9, 0)
    assert got == [
        (13, 1, 25.001, at, Flag.OK, "L-0815", "SN-0001"),  # K0004/0 etc.: the whole part
        (14, 2, 120.01, at, Flag.OK, "L-0815", "SN-0001"),
        (18, 1, 24.998, at + timedelta(minutes=1), Flag.EXCLUDED, None, "SN-0002"),
        (22, 2, 119.99, at + timedelta(minutes=1), Flag.OK, None, "SN-0002"),
        (25, 1, 25.003, at + timedelta(minutes=2), Flag.OK, None, None),
        (27, 2, 120.0, at + timedelta(minutes=2), Flag.OK, None, None),
    ]


def test_slash_zero_description_fields_are_defaults_that_an_index_overrides() -> None:
    result = parse(_dfq("K0100 2", "K1002/0 common", "K1001/1 P1", "K2142/0 mm",
                        "K2001/1 A", "K2001/2 B", "K2142/2 um"))  # fmt: skip
    assert [c.unit for c in result.characteristics] == ["mm", "um"]
    assert result.parts[0].description == "common"


def test_characteristics_belong_to_the_part_described_before_them() -> None:
    result = parse(_dfq("K0100 2", "K1001/1 P1", "K2001/1 A", "K1001/2 P2", "K2001/2 B"))
    assert [(c.index, c.part) for c in result.characteristics] == [(1, 1), (2, 2)]
    assert [p.number for p in result.parts] == ["P1", "P2"]


def test_a_dfd_description_and_its_dfx_values_read_like_one_dfq() -> None:
    pair = parse_pair(_fixture("pair.dfd"), _fixture("pair.dfx"), ("pair.dfd", "pair.dfx"))
    joined = parse(_fixture("pair.dfd") + _fixture("pair.dfx"))
    assert pair.characteristics == joined.characteristics
    assert [(v.line, v.value) for v in pair.values] == [
        (1, 25.01), (1, 120.01), (2, 24.99), (2, 119.99), (3, 25.0), (3, 120.0)
    ]  # fmt: skip
    assert [v.line - 11 for v in joined.values] == [v.line for v in pair.values]


def test_problems_of_a_pair_name_the_file_they_are_in() -> None:
    pair = parse_pair(b"K0100 1\r\nK2001 A\r\nK2110 x\r\n", b"1.0\x14zz\r\n", ("a.dfd", "a.dfx"))
    assert [str(p) for p in pair.problems] == [
        "a.dfd: line 3, K2110/1: 'x' is not a number",
        "a.dfx: line 1, K0002/1: 'zz' is not an integer attribute",
    ]


def test_every_bad_line_is_reported_with_its_line_and_kfield_never_raised() -> None:
    result = parse(_fixture("bad_lines.dfq"))
    assert [(p.line, p.field, p.value_lost) for p in result.problems] == [
        (1, "K0100", False),  # declares 4, describes 3
        (5, "K2110/1", False),  # not a number: no limit, no value lost
        (10, "K2004/3", True),  # attributive: its values are not read
        (12, "K0001/1", True),
        (12, "K0004/2", True),  # 31 November
        (14, "line", True),
        (15, "K12", True),
        (16, "K0004/5", False),  # no K0001/5 before it
        (17, "K0001/5", True),  # no characteristic 5
        (19, "K0002/1", True),
    ]
    assert result.problems[4].message == (
        "'31.11.2026/08:01:00' is not a valid date and time (day is out of range for month)"
    )
    kept = [(v.line, v.characteristic, v.time is None, v.flag) for v in result.values]
    assert kept == [(11, 1, False, Flag.OK), (11, 2, False, Flag.OK), (13, 1, True, Flag.OK),
                    (13, 2, False, Flag.FLAGGED), (20, 2, False, Flag.OK)]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("02.11.2026/08:05:09", datetime(2026, 11, 2, 8, 5, 9)),  # the canonical form
        ("2.11.2026/8:05", datetime(2026, 11, 2, 8, 5)),
        ("2.11.26 08:05:09", datetime(2026, 11, 2, 8, 5, 9)),
        ("2.11.2026.08:05:09", datetime(2026, 11, 2, 8, 5, 9)),
        ("11/02/2026/08:05:09", datetime(2026, 11, 2, 8, 5, 9)),  # month first
        ("2026-11-02/08:05:09", datetime(2026, 11, 2, 8, 5, 9)),
        ("2026-11-02 08:05:09,25", datetime(2026, 11, 2, 8, 5, 9, 250_000)),
        ("02.11.99/23:59", datetime(1999, 11, 2, 23, 59)),
        ("2026-11-02T08:05:09+01:00",
         datetime(2026, 11, 2, 8, 5, 9, tzinfo=timezone(timedelta(hours=1)))),
        ("2026-11-02T07:05:09Z", datetime(2026, 11, 2, 7, 5, 9, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_dates_in_the_forms_aqdef_writers_use(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["02.11.2026", "2026-13-02 08:00", "29.02.2027/08:00", "soon"])
def test_a_date_that_is_not_one_is_refused_with_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="is not a"):
        parse_time(text)


@pytest.mark.parametrize(
    ("text", "expected"), [("25.05", 25.05), ("25,05", 25.05), (" -0.3 ", -0.3), ("1e-3", 0.001)]
)
def test_numbers_take_a_decimal_point_or_comma(text: str, expected: float) -> None:
    assert parse_number(text) == expected


@pytest.mark.parametrize("text", ["nan", "inf", "1.000,5", "", "2x"])
def test_what_is_not_a_finite_number_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        parse_number(text)


@pytest.mark.parametrize(
    ("data", "encoding"),
    [("K2002 Länge".encode(), "utf-8"), ("K2002 Länge".encode("cp1252"), "cp1252"),
     (b"\xef\xbb\xbfK2002 L\xc3\xa4nge", "utf-8"), (b"K2002 L\x81nge", "latin-1")],
)  # fmt: skip
def test_utf8_is_tried_first_then_windows_1252(data: bytes, encoding: str) -> None:
    text, used = decode(data)
    assert used == encoding
    assert text.startswith("K2002 L")


def test_a_named_encoding_is_used_as_given() -> None:
    assert parse(_dfq("K0100 1", "K2001 Ä"), encoding="latin-1").characteristics[0].number == "Ä"


@pytest.mark.parametrize(
    ("data", "encoding", "message"),
    [
        (b"", None, "no K-field line"),
        (b"id,time,value\n1,2,3\n", None, "no K-field line"),
        (b"K0100 1\x00\x00", None, "NUL bytes"),
        ("K2001 Ä".encode("cp1252"), "utf-8", "cannot decode the file as utf-8"),
        (b"K0100 1", "no-such-codec", "cannot decode the file as no-such-codec"),
    ],
)
def test_a_file_that_is_not_aqdef_text_raises_aqdef_error(
    data: bytes, encoding: str | None, message: str
) -> None:
    with pytest.raises(AqdefError, match=message):
        parse(data, encoding)


def test_a_kfield_of_a_value_before_its_k0001_does_not_touch_another_value() -> None:
    result = parse(_dfq("K0100 2", "K2001/1 A", "K2001/2 B", "K0001/1 1.0",
                        "K0004/2 02.11.2026/08:00", "K0004/1 02.11.2026/09:00"))  # fmt: skip
    [value] = result.values
    assert value.time == datetime(2026, 11, 2, 9, 0)
    assert [(p.line, p.field) for p in result.problems] == [(5, "K0004/2")]


def test_text_that_other_line_breaks_would_split_stays_one_line() -> None:
    data = b"K0100 1\r\nK2001 A\r\nK2002 odd\x1csep\x85end\r\n1.0\r\n"
    result = parse(data, encoding="latin-1")
    assert result.characteristics[0].description == "odd\x1csep\x85end"
    assert [v.line for v in result.values] == [4]


@given(st.lists(st.text(alphabet="K0124/ .,:-T\x14\x0f\tx9", max_size=40), max_size=30))
def test_no_line_makes_the_parser_raise(lines: list[str]) -> None:
    data = "\n".join(["K0100 2", "K2001/1 A", "K2001/2 B", *lines]).encode()
    result = parse(data)
    assert all(p.line > 3 or p.field == "K0100" for p in result.problems)
    described = {c.index for c in result.characteristics}
    assert all(v.characteristic in described for v in result.values)


@given(st.binary(max_size=300))
def test_any_bytes_are_read_or_refused_with_aqdef_error(data: bytes) -> None:
    with contextlib.suppress(AqdefError):  # anything else fails the test
        parse(data)
