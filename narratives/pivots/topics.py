"""Coarse topics, the language-neutral topic signal of a post.

Multilingual e5 embeddings carry a post's language as well as its meaning: two unrelated
Chinese posts can be closer than an English post and its Chinese translation, so a shift
in raw embeddings cannot tell a page that changed its subject from one that started
posting translations. Comparing each post with a fixed set of topic descriptions, all in
one language, cancels most of that bias: a post's language pulls its similarity to every
description by about the same amount, and the ranking among descriptions is what
remains. Each post gets a profile, a softmax over its standardised similarities, and
pivot detection compares profiles, never raw vectors across languages.

The descriptions were written for this project to span what pages post before and after
a repurposing: commerce, entertainment and everyday life on one side, news and politics
on the other. Measured on real posts (see the pivot issue's note), the total variation
distance between profile means is 0.13-0.33 for the same news in different languages and
0.55-0.85 for a change of subject.
"""

from __future__ import annotations

import numpy as np

#: Temperature of the softmax over standardised similarities (lower is sharper).
TEMPERATURE = 0.3

TOPICS: dict[str, str] = {
    "shopping": "Shopping and product ads: discounts, prices, free shipping, buy now, new arrivals, clothing, lingerie, shoes, cosmetics.",
    "fashion_beauty": "Fashion, beauty and style: outfits, makeup, skincare, hairstyles, models.",
    "kpop_celebrity": "K-pop, idols and celebrities: fan accounts, comebacks, concerts, albums, role-play of idols.",
    "follow_spam": "Follow-back and engagement spam: follow me, follow for follow, retweet, likes, gain followers, shoutouts.",
    "customer_service": "Customer service replies: please DM us, we are sorry for the trouble, try restarting the app.",
    "music_film": "Music, movies and TV: songs, films, series, actors, premieres and reviews.",
    "sport": "Sport: football, basketball, matches, athletes, teams, scores, the Olympic Games and medals.",
    "food": "Food and cooking: recipes, restaurants, dishes, coffee, cafes, tasty meals.",
    "travel": "Travel and tourism: trips, sightseeing, hotels, beaches, mountains, holidays.",
    "weather_nature": "Weather and nature: rain, storms, snow, temperature, seasons, animals, landscapes.",
    "personal_life": "Personal life and feelings: my day, friends, love, birthday, mood, greetings.",
    "religion": "Religion and faith: God, prayer, church, temple, holidays, blessings.",
    "tech": "Technology: smartphones, apps, software, artificial intelligence, internet, gadgets.",
    "science_space": "Science and space: research, scientists, discoveries, rockets, satellites, experiments.",
    "health_covid": "Health and the COVID-19 pandemic: virus cases, vaccines, hospitals, lockdowns, public health.",
    "economy_trade": "Economy, business and trade: markets, growth, companies, exports, investment, prices, inflation.",
    "china_politics": "Chinese politics and government: the Communist Party, Xi Jinping, Beijing's policies and achievements.",
    "us_politics": "American politics: Washington, the White House, Congress, elections, US democracy and its problems.",
    "international_relations": "Diplomacy and international relations: foreign ministers, summits, sanctions, alliances, hegemony.",
    "war_military": "War and the military: armies, weapons, NATO, Russia and Ukraine, missiles, troops, conflict.",
    "hongkong_taiwan_xinjiang": "Hong Kong, Taiwan and Xinjiang: protests, independence, separatism, Uyghurs, sovereignty.",
    "protest_unrest": "Protests, riots and unrest: demonstrators, police, violence on the streets, coups.",
    "crime_justice": "Crime and justice: police, arrests, courts, shootings, gun violence, drugs.",
    "society_social_issues": "Social issues: racism, poverty, homelessness, inequality, human rights, education.",
    "media_disinfo": "Media and information: journalists, fake news, propaganda, Western media bias, censorship.",
    "environment_climate": "Environment and climate change: emissions, global warming, pollution, energy, green policy.",
    "disaster": "Disasters and accidents: earthquakes, floods, tsunamis, fires, volcano eruptions, rescue.",
    "culture_history": "Culture, art and history: traditions, festivals, museums, heritage, the Spring Festival.",
    "local_news": "Local community news: city council, roads, transport, schools, local events.",
}


def topic_profiles(embeddings: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """Float32 (n, K) topic distributions of L2-normalised embeddings (NaN rows stay NaN).

    Each row is computed on its own (einsum in float64, not a BLAS product, whose sums
    depend on how many rows come at once), so a post gets the same profile in any chunk:
    what lets an update give the tables one run over everything gives."""
    sims = np.einsum("nd,kd->nk", embeddings.astype(np.float64), prototypes.astype(np.float64))
    z = (sims - sims.mean(axis=1, keepdims=True)) / (sims.std(axis=1, keepdims=True) + 1e-9)
    z = z / TEMPERATURE
    z -= z.max(axis=1, keepdims=True)
    weights = np.exp(z)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def topic_prototypes(embedder, cache=None) -> np.ndarray:
    """Embeddings of the topic descriptions with ``embedder`` (float32, (K, dim)), through
    its text ``cache`` when given."""
    return embedder.encode(list(TOPICS.values()), cache)
