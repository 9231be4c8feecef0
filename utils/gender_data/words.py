"""Word lists of utils.gender: honorifics (gendered or not), name suffixes, brand and page words,
group words, East Asian surnames that come first, conjunctions."""

TITLES = {
    # gendered
    "mr": "male", "mister": "male", "sir": "male", "herr": "male", "monsieur": "male", "m": None,
    "sr": "male", "senor": "male", "señor": "male", "sig": "male", "signor": "male", "don": "male",
    "dom": "male", "lord": "male", "king": "male", "prince": "male", "pan": "male", "bay": "male",
    "mrs": "female", "ms": "female", "miss": "female", "mme": "female", "madame": "female",
    "mlle": "female", "mademoiselle": "female", "sra": "female", "srta": "female", "senora": "female",
    "señora": "female", "senorita": "female", "señorita": "female", "frau": "female", "fr": "female",
    "signora": "female", "sigra": "female", "dona": "female", "doña": "female", "lady": "female",
    "queen": "female", "princess": "female", "dame": "female", "pani": "female", "bayan": "female",
    "madam": "female", "mx": None,
    # not gendered
    "dr": None, "dra": "female", "doc": None, "prof": None, "professor": None, "profa": "female",
    "eng": None, "ing": None, "engr": None, "rev": None, "pastor": None, "hon": None,
    "capt": None, "captain": None, "coach": None, "chef": None, "dj": None, "mc": None, "st": None,
    "saint": None, "sheikh": "male", "sheik": "male", "shaikh": "male", "hajji": None, "haji": None,
    "господин": "male", "госпожа": "female", "г-н": "male", "г-жа": "female", "κ": None, "κος": "male",
    "κα": "female",
}
SUFFIXES = {"jr", "sr", "ii", "iii", "iv", "phd", "md", "mba", "esq", "dds", "rn", "cpa", "msc", "bsc", "junior", "filho", "neto", "sobrinho"}
BRAND = {
    "official", "oficial", "officiel", "offiziell", "store", "shop", "shopping", "boutique", "club",
    "fans", "fan", "fanpage", "fanclub", "news", "media", "magazine", "mag", "tv", "radio", "fm",
    "studio", "studios", "agency", "company", "co", "inc", "ltd", "llc", "gmbh", "corp", "group",
    "team", "restaurant", "cafe", "café", "bar", "pizza", "pizzeria", "bakery", "salon", "spa",
    "clinic", "hotel", "store", "market", "brand", "brands", "collection", "design", "designs",
    "photography", "photo", "photos", "films", "records", "music", "band", "academy", "school",
    "university", "college", "church", "foundation", "association", "community", "page", "blog",
    "daily", "memes", "meme", "quotes", "travel", "tours", "fitness", "gym", "beauty", "fashion",
    "cosmetics", "jewelry", "jewellery", "art", "arts", "gallery", "events", "marketing", "digital",
    "online", "global", "international", "services", "solutions", "consulting", "real", "estate",
    "realty", "motors", "auto", "cars", "food", "foods", "kitchen", "burger", "grill", "coffee",
    "tea", "wine", "beer", "brewery", "nails", "lashes", "hair", "barber", "barbershop", "tattoo",
    "ink", "apparel", "wear", "clothing", "kids", "baby", "pets", "dogs", "cats", "official_",
    "lojas", "loja", "tienda", "moda", "store_", "palace", "house", "home", "decor", "deals",
    "sale", "sales", "outlet", "supply", "factory", "lab", "labs", "network", "channel", "podcast",
    "festival", "league", "fc", "sc", "united", "city", "club_", "support", "updates", "archive",
}
GROUP_WORDS = {"family", "familia", "família", "famille", "familie", "twins", "brothers", "sisters",
                "bros", "sisters", "couple", "and", "und", "et", "&", "+", "crew", "squad", "duo", "trio"}
VIET_SURNAMES = {"nguyen", "nguyễn", "tran", "trần", "le", "lê", "pham", "phạm", "hoang", "hoàng", "huynh",
                  "huỳnh", "phan", "vu", "vũ", "vo", "võ", "dang", "đặng", "bui", "bùi", "do", "đỗ", "ho", "hồ",
                  "ngo", "ngô", "duong", "dương", "ly", "lý", "dinh", "đinh", "truong", "trương"}
ASIAN_SURNAMES = VIET_SURNAMES | {
    "kim", "lee", "park", "choi", "jung", "jeong", "kang", "cho", "yoon", "jang", "lim", "han", "oh",
    "seo", "shin", "kwon", "hwang", "ahn", "song", "yoo", "hong", "jeon", "ko", "moon", "yang", "son",
    "baek", "heo", "nam", "noh", "ha", "kwak", "sung", "cha", "joo", "woo", "min", "ryu", "na", "jin",
    "wang", "li", "zhang", "liu", "chen", "huang", "zhao", "wu", "zhou", "xu", "sun", "ma", "zhu",
    "hu", "guo", "he", "lin", "luo", "gao", "zheng", "liang", "xie", "tang", "feng", "deng", "cao",
    "peng", "zeng", "xiao", "tian", "dong", "pan", "yuan", "cai", "jiang", "yu", "du", "ye", "cheng",
    "wei", "su", "lu", "ding", "ren", "shen", "yao", "jiang", "fan", "fang", "shi", "tan", "liao",
}
CONJ = {"e", "y", "i", "og", "och", "en", "és", "ve", "и", "та", "і", "ja", "a"}
