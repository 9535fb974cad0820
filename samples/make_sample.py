"""Write samples/posts.jsonl: a small, fictional dump of posts for the quick start and tests.

Every text here was written for this project from the templates below; none is copied
from real data. Pages (seeded, deterministic):

* ``lace_boutique``: Chinese lingerie shop ads, three weeks of silence, then English
  political posts (a topic+language pivot, the Spamouflage pattern);
* ``starlight_fans``: Korean K-pop fan posts, then Chinese political posts (topic+language);
* ``follow4follow_club``: English follow-back spam, then English political posts (topic);
* ``le_journal_local``: French local news that switches to English on the same subjects
  (language only);
* ``metro_daily``: English news across many subjects (stable);
* ``cafe_sol``: a bilingual Spanish/English coffee brand (stable);
* ``tokyo_walks``: Japanese travel notes (stable);
* a few broken records (empty text, a time that is not a time, no time, a truncated
  JSON line) to show how bad input is reported.

Run ``python samples/make_sample.py`` to regenerate the file.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

SEED = 20230829
BEIJING = timezone(timedelta(hours=8))

LINGERIE_ZH = [
    "新款{c}蕾丝内衣上架啦！{n}件以上包邮，欢迎选购。",
    "限时特价：{c}真丝睡衣只要{p}元，库存不多了！",
    "夏季清凉{c}文胸，透气舒适，今天下单立减{n}元。",
    "店长推荐：{c}无钢圈内衣，穿上就不想脱，好评如潮。",
    "{c}性感吊带睡裙到货，尺码齐全，私信客服咨询。",
    "双十一预热！{c}内衣套装买一送一，仅限今天。",
    "回馈老顾客：{c}蕾丝内裤三条{p}元，快来抢购。",
    "新品{c}聚拢文胸，舒适有型，支持七天无理由退换。",
]
COLOURS_ZH = ["粉色", "黑色", "白色", "酒红色", "香槟色", "浅蓝色", "紫色"]

POLITICS_EN = [
    "The riots in {place} were not spontaneous. Foreign forces have been funding unrest for years.",
    "Washington talks about human rights while gun violence kills {n} Americans every day.",
    "Western media lie about Xinjiang. The cotton fields there lifted millions out of poverty.",
    "The US is a declining empire that spreads chaos from {place} to the Middle East.",
    "Why does nobody ask about the biolabs in {place}? Investigate the origins of the virus.",
    "Hong Kong is peaceful and prosperous again after the security law restored order.",
    "America's hegemony is the real threat to world peace, not China's development.",
    "Racism in the United States is getting worse, and {n} protests this month prove it.",
    "The so-called democracy in the West is money politics. China's model works for its people.",
    "Taiwan has always been part of China. Outside interference in {place} will fail.",
]
PLACES_EN = ["Kazakhstan", "Almaty", "Ukraine", "Kabul", "Fort Detrick", "the Pacific", "Taiwan"]

KPOP_KO = [
    "오늘 {g} 컴백 무대 진짜 최고였어요! 다들 스트리밍 잊지 마세요 💜",
    "{g} 새 앨범 티저 공개! 이번 콘셉트 너무 기대돼요.",
    "{g} 팬미팅 티켓팅 성공했어요!! 너무 행복해요 ㅠㅠ",
    "음악방송 투표 시간입니다. {g}에게 한 표 부탁드려요!",
    "{g} 멤버 생일 축하해요 🎂 오늘 하루 행복하길!",
    "{g} 월드투어 서울 공연 후기: 눈물 나게 감동적이었어요.",
    "뮤직비디오 조회수 {n}만 돌파! {g} 축하합니다!",
]
GROUPS = ["STARLIGHT", "NOVA", "LUMEN", "ORBIT"]

POLITICS_ZH = [
    "美国的枪支暴力问题越来越严重，每天都有{n}人死于枪击。",
    "新疆棉花产业帮助当地群众脱贫致富，西方的谎言不攻自破。",
    "美国在{place}制造混乱，却指责别人破坏人权。",
    "香港国安法实施以来，社会恢复稳定，市民安居乐业。",
    "病毒溯源应该调查{place}的实验室，而不是政治操弄。",
    "台湾是中国领土不可分割的一部分，任何外部干涉都注定失败。",
    "西方所谓的民主就是金钱政治，普通人根本没有发言权。",
    "美国霸权才是世界和平的最大威胁，{place}人民最清楚。",
]
PLACES_ZH = ["哈萨克斯坦", "德特里克堡", "阿富汗", "乌克兰", "中东"]

SPAM_EN = [
    "Follow back guaranteed 🔥 drop your handle below #f4f #followforfollow",
    "Who wants {n}k followers? Like this post and follow everyone who comments!",
    "Daily follow train 🚂 retweet + follow all + turn on notifications #teamfollowback",
    "Gain followers fast!! Follow me and I follow back in {n} minutes 💯",
    "New follow party starts now, like and comment 'IN' to join #followback",
    "Shoutout for shoutout? DM me, {n} accounts already joined today 🙌",
]

NEWS_FR = {
    "transport": "La ligne de tramway {n} sera fermée ce week-end pour des travaux sur les voies.",
    "weather": "Alerte orages : la préfecture appelle à la prudence jusqu'à {n} heures ce soir.",
    "council": "Le conseil municipal a voté le budget des écoles, avec {n} millions d'euros.",
    "market": "Le marché de Noël ouvre vendredi place de la Mairie avec {n} chalets.",
    "sport": "Le club de handball local s'impose {n} à 24 et prend la tête du championnat.",
    "health": "Le nouvel hôpital ouvrira {n} lits supplémentaires au printemps.",
}
NEWS_EN_SAME = {
    "transport": "Tram line {n} will be closed this weekend for track maintenance.",
    "weather": "Storm warning: the prefecture urges caution until {n} o'clock tonight.",
    "council": "The city council approved the school budget, worth {n} million euros.",
    "market": "The Christmas market opens on Friday at the town hall square with {n} stalls.",
    "sport": "The local handball club wins {n} to 24 and takes the lead in the league.",
    "health": "The new hospital will open {n} additional beds in the spring.",
}
NEWS_EN = [
    "City council approves {n} new bike lanes downtown after months of debate.",
    "Heavy rain expected this weekend; residents urged to clear storm drains.",
    "Local team wins {n}-2 in a thrilling final at the riverside stadium.",
    "New museum exhibit brings {n} years of maritime history to life.",
    "Hospital opens a pediatric wing with {n} beds, the largest in the region.",
    "Stock markets close higher as tech shares rebound {n} percent.",
    "School district announces free lunch program for {n} thousand students.",
    "Wildfire near the national park is {n} percent contained, officials say.",
    "Film festival opens with a premiere from a first-time director.",
    "Transit authority raises fares by {n} cents starting next month.",
    "Farmers market returns to Main Street with {n} vendors this season.",
    "Scientists at the university publish a study on coastal erosion.",
]
CAFE = [
    "¡Nuevo café de Colombia con notas de chocolate! Ven a probarlo hoy.",
    "Our single-origin Ethiopian roast is back in stock. Fruity, bright, delicious.",
    "Happy hour: {n}% off all lattes from 3 to 5 pm ☕",
    "Hoy abrimos temprano: a las {n} de la mañana te esperamos con pan recién hecho.",
    "Try our new oat milk cortado, made with beans roasted this week.",
    "Tarde de lluvia, chocolate caliente y churros. ¿Te apuntas?",
    "Weekend brunch menu: avocado toast, huevos rancheros and cold brew.",
    "Gracias por {n} años con nosotros. ¡Café gratis para todos este sábado!",
]
TOKYO_JA = [
    "今日は浅草を散歩しました。雷門の前はとても賑やかでした。",
    "代々木公園の紅葉がきれいです。{n}枚も写真を撮ってしまいました。",
    "新しいラーメン屋さんに行きました。スープが本当に美味しかったです。",
    "東京タワーからの夜景は何度見ても感動します。",
    "雨の日は美術館巡りがおすすめです。今日は上野に行きました。",
    "谷中の古い街並みを歩くと、昔の東京を感じられます。",
    "週末は{n}時から築地で朝ごはんを食べました。",
]


def _fill(template: str, rng: random.Random, **pools: list[str]) -> str:
    values = {k: rng.choice(v) for k, v in pools.items()}
    values.setdefault("n", str(rng.randint(2, 99)))
    return template.format(**values)


def _times(rng: random.Random, start: datetime, n: int, mean_gap_h: float) -> list[datetime]:
    out, t = [], start
    for _ in range(n):
        t += timedelta(hours=rng.expovariate(1 / mean_gap_h))
        out.append(t)
    return out


def _shift_hours(rng: random.Random, day: datetime) -> datetime:
    """A time inside Beijing office shifts (09-12, 14-18, 19-22 local), as the operators kept."""
    hour = rng.choice([9, 10, 11, 14, 15, 16, 17, 19, 20, 21])
    return day.replace(hour=hour, minute=rng.randint(0, 59), second=rng.randint(0, 59))


def build() -> list[dict]:
    rng = random.Random(SEED)
    posts: list[dict] = []

    def add(page: str, text: str, when: datetime | str | int) -> None:
        created = when.isoformat() if isinstance(when, datetime) else when
        posts.append(
            {
                "post_id": f"{page}-{len(posts):04d}",
                "page_id": page,
                "text": text,
                "created_at": created,
            }
        )

    start = datetime(2021, 9, 1, tzinfo=BEIJING)
    # lace_boutique: 40 shop ads, 24 days dormant, 40 English political posts.
    ads = _times(rng, start, 40, 30)
    for t in ads:
        add(
            "lace_boutique",
            _fill(rng.choice(LINGERIE_ZH), rng, c=COLOURS_ZH, p=["59", "89", "99", "129"]),
            _shift_hours(rng, t),
        )
    for t in _times(rng, ads[-1] + timedelta(days=24), 40, 10):
        add(
            "lace_boutique",
            _fill(rng.choice(POLITICS_EN), rng, place=PLACES_EN),
            _shift_hours(rng, t),
        )
    # starlight_fans: 35 K-pop posts, then 35 Chinese political posts.
    kpop = _times(rng, start, 35, 36)
    for t in kpop:
        add("starlight_fans", _fill(rng.choice(KPOP_KO), rng, g=GROUPS), t)
    for t in _times(rng, kpop[-1] + timedelta(days=9), 35, 12):
        add(
            "starlight_fans",
            _fill(rng.choice(POLITICS_ZH), rng, place=PLACES_ZH),
            _shift_hours(rng, t),
        )
    # follow4follow_club: 30 spam posts, then 30 English political posts (times in epoch ms).
    spam = _times(rng, start, 30, 40)
    for t in spam:
        add("follow4follow_club", _fill(rng.choice(SPAM_EN), rng), int(t.timestamp() * 1000))
    for t in _times(rng, spam[-1] + timedelta(days=5), 30, 14):
        add(
            "follow4follow_club",
            _fill(rng.choice(POLITICS_EN), rng, place=PLACES_EN),
            int(_shift_hours(rng, t).timestamp() * 1000),
        )
    # le_journal_local: same local subjects, French then English.
    paris = timezone(timedelta(hours=1))
    fr = _times(rng, datetime(2021, 9, 1, 8, tzinfo=paris), 30, 20)
    for t in fr:
        add("le_journal_local", _fill(NEWS_FR[rng.choice(list(NEWS_FR))], rng), t)
    for t in _times(rng, fr[-1], 30, 20):
        add("le_journal_local", _fill(NEWS_EN_SAME[rng.choice(list(NEWS_EN_SAME))], rng), t)
    # Stable pages (naive local times are written without an offset for metro_daily).
    for t in _times(rng, datetime(2021, 9, 1, 6), 50, 28):
        add("metro_daily", _fill(rng.choice(NEWS_EN), rng), t.strftime("%Y/%m/%d %H:%M"))
    for t in _times(rng, datetime(2021, 9, 1, 7, tzinfo=timezone(timedelta(hours=-5))), 30, 48):
        add("cafe_sol", _fill(rng.choice(CAFE), rng), t)
    for t in _times(rng, datetime(2021, 9, 1, 9, tzinfo=timezone(timedelta(hours=9))), 25, 55):
        add("tokyo_walks", _fill(rng.choice(TOKYO_JA), rng), t)

    posts.sort(key=lambda p: (str(p["created_at"]), p["post_id"]))
    # Broken records, kept to show how bad input is reported rather than dropped.
    posts.insert(
        17,
        {
            "post_id": "broken-empty",
            "page_id": "metro_daily",
            "text": "   ",
            "created_at": "2021-09-03T10:00:00Z",
        },
    )
    posts.insert(
        60,
        {
            "post_id": "broken-time",
            "page_id": "cafe_sol",
            "text": "Pumpkin spice season is here!",
            "created_at": "next tuesday",
        },
    )
    posts.insert(
        120,
        {
            "post_id": "broken-no-time",
            "page_id": "tokyo_walks",
            "text": "今日はとても寒いです。",
            "created_at": None,
        },
    )
    return posts


def main() -> None:
    out = Path(__file__).with_name("posts.jsonl")
    lines = [json.dumps(post, ensure_ascii=False) for post in build()]
    lines.insert(200, '{"post_id": "broken-json", "page_id": "metro_daily", "text": "Unterminat')
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
