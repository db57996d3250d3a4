"""Escaping, code spans and clipping: the pieces every Slack message is built from."""

from __future__ import annotations

from securitybot.slack import mrkdwn as md


def test_escape_is_slacks_three_entities_only() -> None:
    assert md.escape("a & b <!channel> > 'c' \"d\"") == "a &amp; b &lt;!channel&gt; &gt; 'c' \"d\""


def test_escaped_text_is_escaped_again_so_it_shows_as_typed() -> None:
    assert md.escape("&lt;!here&gt;") == "&amp;lt;!here&amp;gt;"


def test_a_backtick_cannot_close_a_code_span() -> None:
    span = md.code("x` <!channel> `y")
    assert span == "`xˋ &lt;!channel&gt; ˋy`"
    assert span.count("`") == 2


def test_a_line_break_cannot_end_a_code_span() -> None:
    assert md.code("a\nb\r\nc") == "`a b c`"


def test_clip_never_cuts_an_entity_in_half() -> None:
    text = md.escape("a" * 8 + "&&&&")
    for limit in range(10, len(text)):
        clipped = md.clip(text, limit)
        assert len(clipped) <= limit
        body = clipped.removesuffix(md.ELLIPSIS)
        assert body.count("&") == body.count("&amp;"), clipped


def test_clip_never_leaves_a_product_link_or_mention_open() -> None:
    text = "see <@UALICE> now " + "x" * 50
    assert md.clip(text, 12) == "see " + md.ELLIPSIS


def test_clip_closes_a_code_span_it_cut() -> None:
    clipped = md.clip("host `" + "h" * 100 + "`", 40)
    assert len(clipped) <= 40 and clipped.count("`") == 2


def test_clip_points_at_the_full_alert() -> None:
    pointer = md.truncated(7)
    clipped = md.clip("x" * 5000, 3000, pointer)
    assert len(clipped) <= 3000 and clipped.endswith("(truncated; full alert: #7)")


def test_only_well_formed_user_ids_become_mentions() -> None:
    assert md.user("U123ABC") == "<@U123ABC>"
    assert md.user("U1|x> <!channel") == "`U1|x&gt; &lt;!channel`"
    assert md.user(None) == "`unknown user`"


def test_plain_text_is_clipped_and_never_empty() -> None:
    assert md.clip_plain("  ", 150) == "Alert"
    assert len(md.clip_plain("h" * 500, 150)) == 150
