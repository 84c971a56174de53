//! Word lists for plausible names, titles and text.

pub const FIRST_NAMES: &[&str] = &[
    "Ada", "Alan", "Amara", "Anton", "Beatrix", "Bruno", "Camille", "Chen", "Clara", "Dmitri", "Elena", "Emeka",
    "Farah", "Felix", "Greta", "Hana", "Hugo", "Ines", "Isaac", "Jun", "Kofi", "Lara", "Leo", "Lucia", "Malik", "Maya",
    "Nadia", "Noor", "Olga", "Omar", "Pablo", "Priya", "Quentin", "Rosa", "Sami", "Sofia", "Tariq", "Ursula", "Viktor",
    "Wen", "Ximena", "Yusuf", "Zadie",
];

pub const LAST_NAMES: &[&str] = &[
    "Abara",
    "Bergstrom",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fontaine",
    "Gallagher",
    "Haddad",
    "Ivanova",
    "Jansen",
    "Kowalski",
    "Lindqvist",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Silva",
    "Tanaka",
    "Ueda",
    "Varga",
    "Whitfield",
    "Xu",
    "Yilmaz",
    "Zielinski",
];

pub const ADJECTIVES: &[&str] = &[
    "Silent",
    "Hidden",
    "Last",
    "Burning",
    "Crimson",
    "Distant",
    "Forgotten",
    "Golden",
    "Hollow",
    "Infinite",
    "Lonely",
    "Midnight",
    "Northern",
    "Quiet",
    "Restless",
    "Secret",
    "Shattered",
    "Wandering",
    "Winter",
    "Wild",
];

pub const NOUNS: &[&str] = &[
    "Garden",
    "River",
    "Library",
    "Mountain",
    "Harbor",
    "Cartographer",
    "Lighthouse",
    "Orchard",
    "Kingdom",
    "Archive",
    "Voyage",
    "Compass",
    "Empire",
    "Forest",
    "Island",
    "Letters",
    "Machine",
    "Night",
    "Sea",
    "Tower",
];

pub const LOREM: &[&str] = &[
    "story", "reader", "page", "chapter", "quiet", "bright", "memory", "city", "journey", "night", "river", "letter",
    "house", "family", "secret", "war", "love", "winter", "light", "voice", "road", "dream", "stranger", "island",
    "garden", "promise", "the", "a", "of", "and", "with", "beyond", "under", "between",
];

/// Category names by depth: roots, then sub-genres, then facets further down.
pub const CATEGORY_LEVELS: &[&[&str]] = &[
    &["Fiction", "Non-fiction", "Children", "Poetry", "Reference"],
    &[
        "Mystery",
        "Fantasy",
        "Science",
        "History",
        "Biography",
        "Romance",
        "Travel",
        "Philosophy",
    ],
    &["Classics", "Contemporary", "Award Winners", "Debuts", "Translated"],
    &["Short Reads", "Series", "Illustrated", "Anthologies"],
];
