"""Where the GCompris monuments stand: photo name → (city, country).

Curated by hand from each monument's own text in `explore_monuments.rcc`, which names the place;
where a monument lies outside any city the nearest town is given, and the Great Wall, which no
single city holds, has none. Cities are spelt as in English-language atlases.
"""

from __future__ import annotations

MONUMENT_PLACES: dict[str, tuple[str | None, str]] = {
    # Egypt
    "greatPyramidOfGiza": ("Giza", "Egypt"),
    "bentPyramid": ("Dahshur", "Egypt"),
    "meidumPyramid": ("Meidum", "Egypt"),
    "redPyramid": ("Dahshur", "Egypt"),
    # India
    "goldenTemple": ("Amritsar", "India"),
    "hawaMahal": ("Jaipur", "India"),
    "gatewayofIndia": ("Mumbai", "India"),
    "greatStupa": ("Sanchi", "India"),
    "ajantaCave": ("Aurangabad", "India"),
    "konarkSunTemple": ("Konark", "India"),
    "mysorePalace": ("Mysore", "India"),
    "charminar": ("Hyderabad", "India"),
    "victoriaMemorial": ("Kolkata", "India"),
    "rangGhar": ("Sivasagar", "India"),
    "qutubMinar": ("Delhi", "India"),
    "tajMahal": ("Agra", "India"),
    # Germany
    "neuschwansteinCastle": ("Füssen", "Germany"),
    "trierImperialBaths": ("Trier", "Germany"),
    "brandenburgGate": ("Berlin", "Germany"),
    "berlinCathedral": ("Berlin", "Germany"),
    "schwerinPalace": ("Schwerin", "Germany"),
    "aulaPalatina": ("Trier", "Germany"),
    "wormsCathedral": ("Worms", "Germany"),
    # France
    "montStMichel": ("Mont-Saint-Michel", "France"),
    "citedeCarcassonne": ("Carcassonne", "France"),
    "reimsCathedral": ("Reims", "France"),
    "pontduGard": ("Nîmes", "France"),
    "arlesAmphitheater": ("Arles", "France"),
    "chateaudeChambord": ("Chambord", "France"),
    "rocamadour": ("Rocamadour", "France"),
    "palaisdesPapes": ("Avignon", "France"),
    "chateaudeChenonceau": ("Chenonceaux", "France"),
    "eiffelTower": ("Paris", "France"),
    # United States
    "cabrillo": ("San Diego", "United States"),
    "canyondeChelly": ("Chinle", "United States"),
    "castillodeSanMarcos": ("St. Augustine", "United States"),
    "castleClinton": ("New York", "United States"),
    "georgeWashingtonBirthplace": ("Colonial Beach", "United States"),
    "lincolnMemorial": ("Washington", "United States"),
    "mountRushmore": ("Keystone", "United States"),
    "navajo": ("Kayenta", "United States"),
    "statueofLiberty": ("New York", "United States"),
    "fortSumter": ("Charleston", "United States"),
    # Wonders of the world
    "chichenItza": ("Pisté", "Mexico"),
    "colosseum": ("Rome", "Italy"),
    "christTheRedeemer": ("Rio de Janeiro", "Brazil"),
    "greatWallofChina": (None, "China"),
    "machuPicchu": ("Aguas Calientes", "Peru"),
    "petra": ("Wadi Musa", "Jordan"),
}

# The categorisation game's monument photos carry only a file name and a Wikimedia credit; these
# are the ones whose credit names a single place (checked against the credit's file title).
CATEGORIZATION_MONUMENT_PLACES: dict[str, tuple[str, str, str]] = {
    "operaHouse": ("Sydney Opera House", "Sydney", "Australia"),
    "zimniPalace": ("Winter Palace", "Saint Petersburg", "Russia"),
    "tajMahal": ("Taj Mahal", "Agra", "India"),
    "arcDeTriomphe": ("Arc de Triomphe", "Paris", "France"),
    "IndiaGate": ("India Gate", "Delhi", "India"),
    "leaningTowerOfPisa": ("Leaning Tower of Pisa", "Pisa", "Italy"),
    "leMusee": ("Louvre Museum", "Paris", "France"),
    "eiffelTower": ("Eiffel Tower", "Paris", "France"),
    "mountRushmore": ("Mount Rushmore", "Keystone", "United States"),
    "parthenon": ("Parthenon", "Athens", "Greece"),
    "colosseum": ("Colosseum", "Rome", "Italy"),
    "statueOfLiberty": ("Statue of Liberty", "New York", "United States"),
    "burj": ("Burj Khalifa", "Dubai", "United Arab Emirates"),
    "victoriaMemorial": ("Victoria Memorial", "London", "United Kingdom"),  # the London one, says its credit
    "usCapitol": ("United States Capitol", "Washington", "United States"),
    "bayterek": ("Bayterek Tower", "Astana", "Kazakhstan"),
    "empireState": ("Empire State Building", "New York", "United States"),
    "brandenburgGate": ("Brandenburg Gate", "Berlin", "Germany"),
    "greatPyramid": ("Great Pyramid of Giza", "Giza", "Egypt"),
    "kutubMinar": ("Qutub Minar", "Delhi", "India"),
    "jucheTower": ("Juche Tower", "Pyongyang", "North Korea"),
    "christTheRedeemer": ("Christ the Redeemer", "Rio de Janeiro", "Brazil"),
    "cathedral": ("Cathedral of Santiago de Compostela", "Santiago de Compostela", "Spain"),
    "monument1": ("Dome of the Rock", "Jerusalem", "Israel"),
    "greatWall": ("Great Wall of China at Mutianyu", "Beijing", "China"),
}
