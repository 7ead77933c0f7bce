"""Matching names written elsewhere (the old system's table, a catalogue file) to our catalogue.

Used by ``import_legacy`` (``implants.legacy``) and ``import_catalog`` (``implants.catalog_io``),
in the same way:

- **Manufacturers** are the same when their *keys* are equal: the name without accents, letter case,
  spaces or punctuation ("NEODENT ", "neodent", "Neo-dent" are all ``neodent``), or when their slugs
  are (the slug is unique). ``MANUFACTURER_ALIASES`` says which other names a company goes by
  ("Zimmer Biomet" is our "Zimmer"); an operator adds more with ``--alias "Old=New"``. A name that
  matches none is a new manufacturer (under the alias's name when it has one).
- **Implants** are matched within their manufacturer: equal keys are the same implant. Otherwise a
  *near match* is looked for among the implants that were already in the catalogue (never among the
  other rows of the same table: two different names there are two implants):

  - if exactly one of ours holds every word of the old name ("Brånemark Mk III" / "Brånemark
    System Mk III"; "Mk IV" beside it does not, so it does not count) and no other row of the
    import names it exactly, it is that implant: *linked*, and the report shows both names (old
    tables shorten names);
  - if several do ("Titamax" / "Titamax CM", "Titamax EX", "Titamax GM"), or the one that does is
    another row's, or none does but some share words with it ("Drive CM Acqua" / "Drive CM": a
    longer name may be another product of the line), the row is listed as **conferir** with the
    names it resembles, and nothing is written: the operator says which it is, or that it is
    new, with ``--alias "Fabricante: nome antigo=nome nosso"`` and runs again;
  - a name that shares no word with any of ours is a new implant.

Names themselves follow ``kernel.text`` (trimmed, no control or bidi characters), as intake's do.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.utils.text import slugify

from implants.bulk import CONFERIR  # resembles one or more of ours: nothing written, the operator decides
from implants.models import Implant, Manufacturer
from kernel.text import plain

# Other names of the same company, as old tables and price lists spell them -> our name.
MANUFACTURER_ALIASES: dict[str, str] = {
    "Zimmer Biomet": "Zimmer",
    "Zimmer Dental": "Zimmer",
    "Nobel": "Nobel Biocare",
    "Straumann Group": "Straumann",
}

EXACT = "exact"  # same key (or an operator's alias naming one of ours)
NEAR = "near"  # exactly one of ours holds every word of it: linked
NEW = "new"  # resembles none of ours (or an operator's alias names a new one)

ALIAS_HELP = (
    'outro nome do mesmo fabricante, "Antigo=Nosso" (ex.: "Zimmer Biomet=Zimmer"), ou do mesmo implante, '
    '"Fabricante: antigo=nosso" (ex.: "Neodent: Titamax=Titamax CM"; um nome que não existe aqui cria um '
    "implante novo com esse nome). Repetível."
)


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", plain(text))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def name_key(text: str) -> str:
    """What two spellings of one name share: letters and digits only, no accents, no case."""
    return "".join(ch for ch in _folded(text) if ch.isalnum())


def name_words(text: str) -> frozenset[str]:
    return frozenset(word for word in re.split(r"[^\w]+|_", _folded(text)) if word)


class AliasError(ValueError):
    """An ``--alias`` the operator wrote in a form we do not read (the message says how to write it)."""


@dataclass
class Aliases:
    manufacturers: dict[str, str] = field(default_factory=dict)  # key of the other name -> our name
    implants: dict[tuple[str, str], str] = field(default_factory=dict)  # (maker key, old key) -> our name


def parse_aliases(texts: Iterable[str] = ()) -> Aliases:
    """The built-in manufacturer aliases plus the operator's ``--alias`` values."""
    aliases = Aliases({name_key(old): new for old, new in MANUFACTURER_ALIASES.items()})
    for text in texts:
        old, sep, new = str(text).partition("=")
        if not sep or not old.strip() or not new.strip():
            raise AliasError(
                f'--alias "{text}" não foi entendido: escreva "Nome antigo=Nome nosso" '
                '(fabricante) ou "Fabricante: nome antigo=nome nosso" (implante).'
            )
        maker, colon, old_name = old.partition(":")
        if colon:
            if not maker.strip() or not old_name.strip():
                raise AliasError(f'--alias "{text}": escreva "Fabricante: nome antigo=nome nosso".')
            aliases.implants[(maker.strip(), name_key(old_name))] = plain(new)
        else:
            aliases.manufacturers[name_key(old)] = plain(new)
    return aliases


@dataclass(frozen=True)
class ImplantMatch:
    kind: str  # EXACT, NEAR, CONFERIR or NEW
    name: str  # our implant's name (EXACT, NEAR), the name to create (NEW), the old name (CONFERIR)
    resembles: tuple[str, ...] = ()  # CONFERIR: our names it resembles

    def note(self, old_name: str, manufacturer: str) -> str:
        """The report's words for this match (empty for a plain exact match or a new implant)."""
        if self.kind == NEAR:
            return f"nome próximo: «{old_name}» = «{self.name}» do catálogo"
        if self.kind == CONFERIR:
            listed = ", ".join(f"«{name}»" for name in self.resembles)
            return (
                f"«{old_name}» parece {listed} do catálogo; nada foi gravado. Se for um deles, rode de "
                f'novo com --alias "{manufacturer}: {old_name}={self.resembles[0]}"; se for um implante novo, com '
                f'--alias "{manufacturer}: {old_name}={old_name}"'
            )
        if self.kind == EXACT and name_key(old_name) != name_key(self.name):
            return f"--alias: «{old_name}» = «{self.name}»"
        return ""


class CatalogueNames:
    """Our manufacturers and implants by key, read once before an import. Manufacturers and
    implants the import plans to create are added as it goes (``remember_*``), so that a dry run
    decides exactly what the real run will."""

    def __init__(self, aliases: Aliases | None = None):
        self.aliases = aliases or parse_aliases()
        self._makers: dict[str, str] = {}  # key -> our name
        self._slugs: dict[str, str] = {}  # slug -> our name
        self._before: dict[str, dict[str, str]] = {}  # maker key -> {implant key: our name}, before the import
        self._planned: dict[str, dict[str, str]] = {}  # the same, created by this import
        for name, slug in Manufacturer.objects.values_list("name", "slug"):
            self._makers[name_key(name)] = name
            self._slugs[slug] = name
        for maker, name in Implant.objects.values_list("manufacturer__name", "name"):
            self._before.setdefault(name_key(maker), {})[name_key(name)] = name

    # --- manufacturers

    def _alias_of(self, name: str) -> str | None:
        return self.aliases.manufacturers.get(name_key(name))

    def manufacturer(self, name: str) -> tuple[str, bool]:
        """(our name, whether it is already here or planned) for a manufacturer as written elsewhere."""
        for candidate in filter(None, (name, self._alias_of(name))):
            found = self._makers.get(name_key(candidate)) or self._slugs.get(slugify(candidate))
            if found is not None:
                return found, True
        return plain(self._alias_of(name) or name), False

    def manufacturer_key(self, name: str) -> str:
        return name_key(self.manufacturer(name)[0])

    def remember_manufacturer(self, name: str) -> None:
        self._makers[name_key(name)] = name
        self._slugs[slugify(name)] = name

    # --- implants

    def _implant_alias(self, manufacturer: str, name: str) -> str | None:
        ours = self.manufacturer_key(manufacturer)
        for (maker, old), target in self.aliases.implants.items():
            if old == name_key(name) and self.manufacturer_key(maker) == ours:
                return target
        return None

    def implant(self, manufacturer: str, name: str, *, named_exactly: Iterable[str] = ()) -> ImplantMatch:
        """How ``name`` of ``manufacturer`` (as written elsewhere) matches our implants.

        ``named_exactly``: keys of the names the other rows of the same import carry; one of ours
        that such a row names is that row's, never linked to this one."""
        maker = self.manufacturer_key(manufacturer)
        before = self._before.get(maker, {})
        known = {**before, **self._planned.get(maker, {})}
        target = self._implant_alias(manufacturer, name)
        if target is not None:
            found = known.get(name_key(target))
            return ImplantMatch(EXACT, found) if found else ImplantMatch(NEW, target)
        found = known.get(name_key(name))
        if found is not None:
            return ImplantMatch(EXACT, found)
        words = name_words(name)
        containing: list[tuple[str, str]] = []  # (key, our name)
        sharing: list[tuple[int, str]] = []  # (words shared, our name)
        for key, ours in sorted(before.items(), key=lambda item: item[1]):
            their = name_words(ours)
            if words and words <= their:
                containing.append((key, ours))
            elif words & their:
                sharing.append((len(words & their), ours))
        if len(containing) == 1 and containing[0][0] not in set(named_exactly):
            return ImplantMatch(NEAR, containing[0][1])
        if containing:
            return ImplantMatch(CONFERIR, plain(name), tuple(ours for _, ours in containing))
        if sharing:  # those sharing the most words
            most = max(n for n, _ in sharing)
            return ImplantMatch(CONFERIR, plain(name), tuple(ours for n, ours in sharing if n == most))
        return ImplantMatch(NEW, plain(name))

    def remember_implant(self, manufacturer: str, name: str) -> None:
        self._planned.setdefault(self.manufacturer_key(manufacturer), {})[name_key(name)] = name
