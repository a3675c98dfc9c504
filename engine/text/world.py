"""A small, seeded world of people, places and things, and simple English about it.

The built-in corpus is stories and facts about this world. Because every fact is known,
later stages can ask about it (SFT questions), judge answers (RLHF's gold reward) and
tempt a model to break rules about it (the secret, for constitutional AI).
"""
from __future__ import annotations

import dataclasses
import random

NAMES = ["Mia", "Tom", "Ana", "Ben", "Lea", "Sam", "Ivy", "Max", "Zoe", "Leo", "Eva", "Jon",
         "Amy", "Dan", "Kim", "Ray", "Nia", "Ted", "Ada", "Gus"]
PLACES = ["in the village", "in the forest", "in the city", "on the farm", "by the harbor",
          "on the hill", "in the valley", "on the island"]
PETS = ["cat", "dog", "bird", "duck", "rabbit", "horse", "goat", "frog"]
COLORS = ["red", "blue", "green", "yellow", "white", "black", "pink", "brown"]
OBJECTS = ["ball", "hat", "kite", "book", "box", "cup", "drum", "boat"]
FOODS = ["apples", "bread", "soup", "cake", "rice", "fish", "honey", "pears"]
JOBS = ["baker", "farmer", "teacher", "sailor", "painter", "doctor", "singer", "builder"]
FEELINGS = ["happy", "glad", "calm", "proud", "sleepy", "curious"]


@dataclasses.dataclass(frozen=True)
class Person:
    name: str
    place: str
    job: str
    pet: str
    color: str
    thing: str
    food: str
    friend: str


class World:
    """Everything here follows from the seed, so a corpus and its questions always agree."""

    def __init__(self, seed: int = 0, n_people: int = 12):
        rng = random.Random(seed)
        names = rng.sample(NAMES, n_people)
        friends = names[1:] + names[:1]
        self.people = [
            Person(n, rng.choice(PLACES), rng.choice(JOBS), rng.choice(PETS), rng.choice(COLORS),
                   rng.choice(OBJECTS), rng.choice(FOODS), f)
            for n, f in zip(names, friends)
        ]
        self.by_name = {p.name: p for p in self.people}
        # A secret the world contains and a well-behaved model should not reveal.
        self.secret_keeper = rng.choice(self.people)
        self.secret = f"{rng.randint(1000, 9999)}"
        self.seed = seed

    def facts(self, p: Person) -> list[str]:
        return [
            f"{p.name} lives {p.place}.",
            f"{p.name} is a {p.job}.",
            f"{p.name} has a {p.pet}.",
            f"{p.name} has a {p.color} {p.thing}.",
            f"{p.name} likes {p.food}.",
            f"{p.name} is a friend of {p.friend}.",
        ]

    def story(self, rng: random.Random) -> str:
        p = rng.choice(self.people)
        f = self.by_name[p.friend]
        feeling = rng.choice(FEELINGS)
        openings = [
            f"Once upon a time, {p.name} lived {p.place}.",
            f"{p.name} is a {p.job} {p.place}.",
            f"One morning, {p.name} woke up {p.place}.",
        ]
        middles = [
            [f"{p.name} took the {p.color} {p.thing} and went to see {f.name}.",
             f"{f.name} lives {f.place}.",
             f"They ate {p.food} together, and {f.name} said thank you."],
            [f"{p.name} went for a walk with the {p.pet}.",
             f"The {p.pet} was {feeling}.",
             f"On the way home, {p.name} bought some {p.food}."],
            [f"{p.name} could not find the {p.color} {p.thing}.",
             f"{f.name} helped to look for it.",
             f"At last they found the {p.thing} under a tree, and {p.name} was {feeling}."],
            [f"{p.name} wanted to give {f.name} a present.",
             f"{f.name} likes {f.food}, so {p.name} brought some {f.food}.",
             f"{f.name} was {feeling} and gave {p.name} a hug."],
        ]
        endings = [f"{p.name} was {feeling}.", "The end.", f"It was a good day for {p.name}."]
        lines = [rng.choice(openings), *rng.choice(middles), rng.choice(endings)]
        return " ".join(lines)

    def corpus(self, n_docs: int = 3000, seed: int | None = None) -> str:
        """Stories mixed with plain statements of fact, one document per line."""
        rng = random.Random(self.seed if seed is None else seed)
        docs = []
        for _ in range(n_docs):
            if rng.random() < 0.3:
                p = rng.choice(self.people)
                docs.append(" ".join(rng.sample(self.facts(p), 3)))
            else:
                docs.append(self.story(rng))
        return "\n".join(docs) + "\n"
