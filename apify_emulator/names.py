"""Name material for the synthetic followers: given names with their gender, surnames, decorations.

Written for the emulator by hand (common names per culture), not copied from any gender-inference
dictionary, so that the generator's ground truth is independent of the library under test.

Compact notation, parsed once at import:
* lists are whitespace-separated; `_` inside an entry stands for a space ("De_Luca");
* `Latin:Native` gives a romanised form and the native-script form ("Dmitry:Дмитрий");
* `Male/Female` gives both forms of a surname when the culture's rule (see `_FEMININE`) does not apply.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Name:
    """One name in its romanised and native spelling (equal for Latin-script cultures)."""

    latin: str
    native: str


@dataclass(frozen=True, slots=True)
class Surname:
    male: Name
    female: Name


@dataclass(frozen=True, slots=True)
class Culture:
    code: str
    weight: int
    flags: tuple[str, ...]
    male: tuple[Name, ...]
    female: tuple[Name, ...]
    surnames: tuple[Surname, ...]
    native_share: float  # probability of the native form: native script, and native order if family_first
    family_first: bool  # native order is "Surname Given" (CJK, Vietnamese)
    native_joiner: str  # between surname and given name in native order ("" for CJK)


def _feminine_slavic(word: str) -> str:
    for male, female in (("skiy", "skaya"), ("skyi", "ska"), ("sky", "skaya"), ("ский", "ская"),
                         ("ський", "ська"), ("ski", "ska"), ("cki", "cka")):
        if word.endswith(male):
            return word[: -len(male)] + female
    if word.endswith(("ov", "ev", "in", "ов", "ев", "ёв", "ин")):
        return word + ("а" if word[-1] in "вн" else "a")
    return word


def _feminine_czech(word: str) -> str:
    if word.endswith("ý"):
        return word[:-1] + "á"
    if word.endswith("a"):
        return word[:-1] + "ová"
    if word.endswith("ek"):
        return word[:-2] + "ková"
    if word.endswith("ec"):
        return word[:-2] + "cová"
    return word + "ová"


_FEMININE = {"ru": _feminine_slavic, "uk": _feminine_slavic, "pl": _feminine_slavic, "cs": _feminine_czech}


def _words(text: str) -> tuple[str, ...]:
    return tuple(word.replace("_", " ") for word in text.split())


def _names(text: str) -> tuple[Name, ...]:
    out = []
    for entry in _words(text):
        latin, _, native = entry.partition(":")
        out.append(Name(latin, native or latin))
    return tuple(out)


def _surnames(code: str, text: str) -> tuple[Surname, ...]:
    feminine = _FEMININE.get(code, lambda word: word)
    out = []
    for entry in _words(text):
        latin, _, native = entry.partition(":")
        native = native or latin
        latin_m, _, latin_f = latin.partition("/")
        native_m, _, native_f = native.partition("/")
        out.append(Surname(Name(latin_m, native_m),
                           Name(latin_f or feminine(latin_m), native_f or feminine(native_m))))
    return tuple(out)


def _culture(code, weight, flags, male, female, surnames, native_share=0.0, family_first=False,
             native_joiner=" ") -> Culture:
    return Culture(code, weight, tuple(flags.split()), _names(male), _names(female),
                   _surnames(code, surnames), native_share, family_first, native_joiner)


CULTURES: tuple[Culture, ...] = (
    _culture(
        "en", 20, "🇺🇸 🇬🇧 🇨🇦 🇦🇺 🇮🇪 🇳🇿",
        "James John Robert Michael William David Richard Joseph Thomas Christopher Daniel Matthew "
        "Anthony Mark Steven Andrew Joshua Ryan Brandon Tyler Jacob Ethan Liam Noah Oliver Jack Harry "
        "George Jordan Alex",
        "Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Emily Ashley Emma "
        "Olivia Ava Sophia Isabella Mia Charlotte Amelia Chloe Hannah Madison Lily Grace Taylor Alex",
        "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Martin "
        "Jackson Thompson White Harris Clark Lewis Walker Hall Young King Wright Scott Green Baker "
        "Adams Campbell Evans O'Brien Murphy",
    ),
    _culture(
        "es", 12, "🇪🇸 🇲🇽 🇦🇷 🇨🇴 🇨🇱 🇵🇪",
        "José Juan Carlos Luis Javier Miguel Antonio Alejandro Diego Pablo Manuel Francisco Jorge "
        "Andrés Sergio Fernando Santiago Mateo Sebastián Ricardo",
        "María Carmen Ana Laura Lucía Sofía Valentina Isabella Camila Gabriela Paula Daniela Marta "
        "Elena Andrea Alejandra Claudia Rocío Guadalupe Ximena",
        "García Rodríguez González Fernández López Martínez Sánchez Pérez Gómez Martín Jiménez Ruiz "
        "Hernández Díaz Moreno Muñoz Álvarez Romero Torres Ramírez Flores Vargas Castillo Rojas Morales",
    ),
    _culture(
        "pt", 10, "🇧🇷 🇵🇹",
        "João Pedro Lucas Gabriel Rafael Mateus Gustavo Felipe Bruno Thiago Rodrigo Leonardo "
        "Vinícius Caio Davi Enzo Arthur Heitor",
        "Ana Maria Juliana Mariana Beatriz Larissa Camila Fernanda Letícia Amanda Bruna Gabriela "
        "Isabela Júlia Luana Raquel Thaís Vitória",
        "Silva Santos Oliveira Souza Rodrigues Ferreira Alves Pereira Lima Gomes Costa Ribeiro Martins "
        "Carvalho Almeida Lopes Soares Fernandes Vieira Barbosa Rocha Dias",
    ),
    _culture(
        "fr", 4, "🇫🇷 🇧🇪 🇨🇭",
        "Jean Pierre Michel Philippe Nicolas Julien Antoine Thomas Maxime Alexandre Louis Hugo Lucas "
        "Théo Mathieu Sébastien Guillaume Jean-Baptiste François Olivier",
        "Marie Sophie Camille Julie Léa Manon Chloé Inès Clara Émilie Céline Amélie Nathalie Isabelle "
        "Aurélie Élodie Margaux Océane Juliette Anaïs",
        "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent Lefebvre "
        "Michel Garcia David Bertrand Roux Vincent Fournier Girard Lambert Bonnet Mercier",
    ),
    _culture(
        "de", 4, "🇩🇪 🇦🇹 🇨🇭",
        "Lukas Leon Maximilian Felix Paul Jonas Tim Jan Niklas Finn Tobias Florian Stefan Thomas "
        "Michael Andreas Jürgen Klaus Sebastian Moritz",
        "Anna Lea Laura Lena Hannah Sophie Marie Julia Lisa Katharina Sarah Johanna Leonie Emilia "
        "Sabine Ursula Petra Franziska Jana Carina",
        "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch Bauer "
        "Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann Lange Weiß",
    ),
    _culture(
        "it", 4, "🇮🇹",
        "Giuseppe Giovanni Antonio Mario Luigi Francesco Alessandro Lorenzo Matteo Marco Andrea Luca "
        "Davide Simone Federico Riccardo Gabriele Stefano Paolo Roberto",
        "Giulia Chiara Francesca Sara Martina Valentina Alessia Federica Elisa Giorgia Sofia Aurora "
        "Alice Beatrice Greta Silvia Paola Elena Roberta Ilaria",
        "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo Conti "
        "De_Luca Mancini Costa Giordano Rizzo Lombardi Moretti",
    ),
    _culture(
        "ru", 5, "🇷🇺",
        "Dmitry:Дмитрий Alexander:Александр Sergey:Сергей Andrey:Андрей Alexey:Алексей Maxim:Максим "
        "Ivan:Иван Mikhail:Михаил Nikolai:Николай Artem:Артём Vladimir:Владимир Pavel:Павел Egor:Егор "
        "Kirill:Кирилл Denis:Денис Roman:Роман",
        "Anna:Анна Maria:Мария Elena:Елена Olga:Ольга Natalia:Наталья Tatiana:Татьяна Irina:Ирина "
        "Ekaterina:Екатерина Svetlana:Светлана Anastasia:Анастасия Yulia:Юлия Daria:Дарья "
        "Polina:Полина Ksenia:Ксения Alina:Алина Viktoria:Виктория",
        "Ivanov:Иванов Smirnov:Смирнов Kuznetsov:Кузнецов Popov:Попов Vasiliev:Васильев Petrov:Петров "
        "Sokolov:Соколов Mikhailov:Михайлов Novikov:Новиков Fedorov:Фёдоров Morozov:Морозов "
        "Volkov:Волков Lebedev:Лебедев Kozlov:Козлов Pavlov:Павлов Orlov:Орлов Sorokin:Сорокин "
        "Zaitsev:Зайцев Kovalevsky:Ковалевский",
        native_share=0.55,
    ),
    _culture(
        "uk", 3, "🇺🇦",
        "Oleksandr:Олександр Andriy:Андрій Serhiy:Сергій Mykola:Микола Taras:Тарас Bohdan:Богдан "
        "Volodymyr:Володимир Dmytro:Дмитро Yaroslav:Ярослав Oleh:Олег Vasyl:Василь Yuriy:Юрій "
        "Ivan:Іван Petro:Петро",
        "Olena:Олена Oksana:Оксана Iryna:Ірина Nataliya:Наталія Tetiana:Тетяна Yulia:Юлія "
        "Kateryna:Катерина Sofiia:Софія Anastasiia:Анастасія Halyna:Галина Mariia:Марія "
        "Viktoriia:Вікторія Solomiia:Соломія Khrystyna:Христина",
        "Shevchenko:Шевченко Kovalenko:Коваленко Bondarenko:Бондаренко Tkachenko:Ткаченко "
        "Kravchenko:Кравченко Melnyk:Мельник Boyko:Бойко Kovalchuk:Ковальчук Oliynyk:Олійник "
        "Lysenko:Лисенко Savchenko:Савченко Rudenko:Руденко Petrenko:Петренко Marchenko:Марченко "
        "Kovalskyi:Ковальський Hrytsenko:Гриценко",
        native_share=0.5,
    ),
    _culture(
        "pl", 2, "🇵🇱",
        "Jan Piotr Krzysztof Andrzej Tomasz Paweł Michał Marcin Jakub Mateusz Łukasz Kamil Bartosz "
        "Wojciech Grzegorz Szymon",
        "Anna Maria Katarzyna Małgorzata Agnieszka Barbara Ewa Magdalena Joanna Aleksandra Zofia "
        "Natalia Julia Monika Karolina Weronika",
        "Nowak Kowalski Wiśniewski Wójcik Kowalczyk Kamiński Lewandowski Zieliński Szymański Woźniak "
        "Dąbrowski Kozłowski Jankowski Mazur Krawczyk Piotrowski Grabowski Zawadzki",
    ),
    _culture(
        "cs", 1, "🇨🇿",
        "Jiří Jan Petr Josef Pavel Martin Tomáš Jaroslav Miroslav Lukáš Jakub Ondřej Vojtěch Filip Zdeněk",
        "Jana Marie Eva Hana Anna Lenka Kateřina Lucie Věra Petra Tereza Veronika Barbora Markéta "
        "Kristýna Eliška",
        "Novák Svoboda Novotný Dvořák Černý Procházka Kučera Veselý Horák Němec Pokorný Marek "
        "Pospíšil Hájek Král Jelínek Růžička Beneš",
    ),
    _culture(
        "tr", 5, "🇹🇷",
        "Mehmet Mustafa Ahmet Ali Hüseyin Hasan İbrahim Murat Emre Burak Can Cem Oğuz Kerem Yusuf "
        "Eren Serkan Barış",
        "Ayşe Fatma Emine Hatice Zeynep Elif Merve Büşra Esra Derya Selin Ece Gizem Buse Cansu Özge "
        "Defne Şeyma",
        "Yılmaz Kaya Demir Şahin Çelik Yıldız Yıldırım Öztürk Aydın Özdemir Arslan Doğan Kılıç Aslan "
        "Çetin Kara Koç Kurt Özkan Şimşek",
    ),
    _culture(
        "ar", 7, "🇸🇦 🇦🇪 🇪🇬 🇲🇦 🇯🇴 🇱🇧",
        "Mohammed:محمد Ahmed:أحمد Ali:علي Omar:عمر Khalid:خالد Youssef:يوسف Ibrahim:إبراهيم "
        "Hassan:حسن Hussein:حسين Abdullah:عبدالله Mahmoud:محمود Mustafa:مصطفى Karim:كريم "
        "Tariq:طارق Faisal:فيصل Saeed:سعيد Hamza:حمزة Ziad:زياد",
        "Fatima:فاطمة Aisha:عائشة Maryam:مريم Nour:نور Layla:ليلى Sara:سارة Huda:هدى Amira:أميرة "
        "Yasmin:ياسمين Rania:رانيا Salma:سلمى Zainab:زينب Hala:هالة Reem:ريم Dina:دينا Mona:منى "
        "Lina:لينا Rana:رنا",
        "Al-Sayed:السيد Hassan:حسن Haddad:حداد Khalil:خليل Mansour:منصور Nasser:ناصر Saleh:صالح "
        "Abbas:عباس Al-Harbi:الحربي Al-Otaibi:العتيبي Al-Qahtani:القحطاني Farouk:فاروق "
        "Hamdan:حمدان Aziz:عزيز Darwish:درويش Karam:كرم",
        native_share=0.4,
    ),
    _culture(
        "hi", 9, "🇮🇳",
        "Rahul:राहुल Amit:अमित Rohit:रोहित Vikram:विक्रम Arjun:अर्जुन Suresh:सुरेश Rajesh:राजेश "
        "Anil:अनिल Sanjay:संजय Karan:करण Aditya:आदित्य Vivek:विवेक Manoj:मनोज Deepak:दीपक Ravi:रवि "
        "Aarav:आरव Ishaan:ईशान Nikhil:निखिल",
        "Priya:प्रिया Anjali:अंजलि Pooja:पूजा Neha:नेहा Sneha:स्नेहा Kavya:काव्या Divya:दिव्या "
        "Shreya:श्रेया Ananya:अनन्या Riya:रिया Sunita:सुनीता Meera:मीरा Lakshmi:लक्ष्मी "
        "Aishwarya:ऐश्वर्या Nisha:निशा Swati:स्वाति Pallavi:पल्लवी Isha:ईशा",
        "Sharma:शर्मा Verma:वर्मा Gupta:गुप्ता Singh:सिंह Kumar:कुमार Patel:पटेल Reddy:रेड्डी "
        "Iyer:अय्यर Nair:नायर Joshi:जोशी Mehta:मेहता Chopra:चोपड़ा Agarwal:अग्रवाल Das:दास Rao:राव "
        "Malhotra:मल्होत्रा Kapoor:कपूर Banerjee:बनर्जी",
        native_share=0.15,
    ),
    _culture(
        "zh", 3, "🇨🇳 🇹🇼 🇭🇰",
        "Wei:伟 Hao:浩 Jun:军 Lei:磊 Yang:洋 Jie:杰 Tao:涛 Ming:明 Qiang:强 Bo:博 Yu:宇 Haoran:浩然 "
        "Zihao:子豪 Jianguo:建国 Zhiwei:志伟",
        "Fang:芳 Na:娜 Min:敏 Jing:静 Li:丽 Yan:艳 Xiu:秀 Ying:英 Hui:慧 Mei:美 Xue:雪 Ting:婷 "
        "Yuxin:雨欣 Xinyi:欣怡 Jiayi:佳怡 Shu:淑",
        "Wang:王 Li:李 Zhang:张 Liu:刘 Chen:陈 Yang:杨 Huang:黄 Zhao:赵 Wu:吴 Zhou:周 Xu:徐 Sun:孙 "
        "Ma:马 Zhu:朱 Hu:胡 Lin:林 Guo:郭 He:何",
        native_share=0.6, family_first=True, native_joiner="",
    ),
    _culture(
        "ja", 2, "🇯🇵",
        "Haruto:陽翔 Ren:蓮 Hiroshi:浩 Takeshi:武 Kenji:健二 Daiki:大輝 Yuto:悠斗 Sota:蒼太 "
        "Kaito:海斗 Takumi:拓海 Shota:翔太 Ryo:涼 Kazuki:一輝 Naoki:直樹",
        "Yui:結衣 Sakura:さくら Hina:陽菜 Aoi:葵 Yuna:由奈 Mio:美桜 Haruka:遥 Misaki:美咲 "
        "Ayaka:彩花 Yuki:由紀 Naomi:直美 Emi:恵美 Rin:凛 Mei:芽依 Nanami:七海 Akari:あかり",
        "Sato:佐藤 Suzuki:鈴木 Takahashi:高橋 Tanaka:田中 Watanabe:渡辺 Ito:伊藤 Yamamoto:山本 "
        "Nakamura:中村 Kobayashi:小林 Kato:加藤 Yoshida:吉田 Yamada:山田 Sasaki:佐々木 "
        "Matsumoto:松本 Inoue:井上 Kimura:木村",
        native_share=0.6, family_first=True, native_joiner="",
    ),
    _culture(
        "ko", 2, "🇰🇷",
        "Minjun:민준 Seojun:서준 Dohyun:도현 Jiho:지호 Junho:준호 Hyunwoo:현우 Jihoon:지훈 "
        "Taeyang:태양 Sungmin:성민 Donghyun:동현 Jaehyun:재현 Seungho:승호 Woojin:우진 Jimin:지민",
        "Seoyeon:서연 Jiwoo:지우 Seoyun:서윤 Minseo:민서 Hayoon:하윤 Jiyoung:지영 Eunji:은지 "
        "Soyeon:소연 Yuna:유나 Subin:수빈 Hyejin:혜진 Minji:민지 Jisoo:지수 Yerin:예린 "
        "Chaeyoung:채영 Dahyun:다현",
        "Kim:김 Lee:이 Park:박 Choi:최 Jung:정 Kang:강 Cho:조 Yoon:윤 Jang:장 Lim:임 Han:한 Oh:오 "
        "Seo:서 Shin:신 Kwon:권 Song:송",
        native_share=0.6, family_first=True, native_joiner="",
    ),
    _culture(
        "el", 1, "🇬🇷 🇨🇾",
        "Giorgos:Γιώργος Dimitris:Δημήτρης Kostas:Κώστας Nikos:Νίκος Giannis:Γιάννης "
        "Panagiotis:Παναγιώτης Christos:Χρήστος Vasilis:Βασίλης Alexandros:Αλέξανδρος "
        "Michalis:Μιχάλης Thanasis:Θανάσης Stavros:Σταύρος",
        "Maria:Μαρία Eleni:Ελένη Katerina:Κατερίνα Sofia:Σοφία Georgia:Γεωργία Despina:Δέσποινα "
        "Anna:Άννα Dimitra:Δήμητρα Vasiliki:Βασιλική Eirini:Ειρήνη Angeliki:Αγγελική "
        "Christina:Χριστίνα Panagiota:Παναγιώτα",
        "Papadopoulos/Papadopoulou:Παπαδόπουλος/Παπαδοπούλου Papadakis/Papadaki:Παπαδάκης/Παπαδάκη "
        "Georgiou:Γεωργίου Nikolaidis/Nikolaidou:Νικολαΐδης/Νικολαΐδου Oikonomou:Οικονόμου "
        "Karagiannis/Karagianni:Καραγιάννης/Καραγιάννη Vlachos/Vlachou:Βλάχος/Βλάχου "
        "Dimitriou:Δημητρίου Pappas/Pappa:Παππάς/Παππά Makris/Makri:Μακρής/Μακρή "
        "Antonopoulos/Antonopoulou:Αντωνόπουλος/Αντωνοπούλου",
        native_share=0.6,
    ),
    _culture(
        "ng", 3, "🇳🇬",
        "Chinedu Emeka Oluwaseun Tunde Adebayo Ikenna Chukwuemeka Obinna Babatunde Olumide Ifeanyi "
        "Segun Kelechi Musa Abubakar Femi",
        "Chioma Ngozi Adaeze Funmilayo Folake Amaka Blessing Chidinma Yetunde Aisha Nneka Ifeoma "
        "Titilayo Bukola Zainab Adaobi Precious Kemi",
        "Okafor Okonkwo Adeyemi Ogunleye Eze Nwosu Balogun Adebayo Okoro Obi Nwachukwu Oladipo Chukwu "
        "Afolabi Bello Ibrahim Onyeka Uzor",
    ),
    _culture(
        "nordic", 2, "🇸🇪 🇳🇴 🇩🇰 🇳🇱",
        "Lars Erik Anders Johan Magnus Henrik Sven Oskar Nils Mikkel Jens Bram Daan Sem Ruben Thijs",
        "Anna Emma Ingrid Astrid Freja Maja Elin Sofie Linnea Sanne Fleur Lotte Anouk Femke Saga Ida",
        "Andersson Johansson Karlsson Nilsson Eriksson Larsson Hansen Jensen Nielsen Pedersen de_Jong "
        "Jansen de_Vries van_den_Berg Bakker Visser Smit",
    ),
    _culture(
        "vi", 2, "🇻🇳",
        "Minh Huy Khang Bảo Phúc Tuấn Hoàng Dũng Đức Long Nam Quân Thành Trung Hiếu",
        "Linh Lan Mai Hương Ngọc Trang Thảo Vy Nhung Hạnh Phương Hà Thủy Yến Hồng Nhi",
        "Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý",
        native_share=0.5, family_first=True,
    ),
    _culture(
        "id", 3, "🇮🇩",
        "Budi Agus Andi Dedi Rizky Fajar Joko Hendra Adi Bayu Dimas Arif",
        "Siti Dewi Sri Putri Ayu Rina Wulan Fitri Indah Nurul Ratna Intan",
        "Santoso Wijaya Saputra Hidayat Pratama Kusuma Setiawan Nugroho Wibowo Susanto Halim Gunawan",
    ),
)

DECOR_EMOJI = _words("✨ 🌸 💫 🦋 🌙 ⭐ 🔥 💎 👑 🌺 🌻 💖 ❤️ 🖤 🤍 ☀️ 🌊 🌴 ⚡ 🎵 📸 ✈️ 🌹 🍀 😎 💪 🙏 ⚽ 🏀 🎮 🌈")
GENDERED_EMOJI = {"female": _words("💅 👸 💄 👩 🎀"), "male": _words("🧔 🤴 👨 🏋️‍♂️")}

BIOS = _words(
    "Photographer_📸 Travel_✈️ Fitness Artist_🎨 Student Engineer DM_for_collabs Model Entrepreneur "
    "Coach Dubai NYC London Music_🎵 Blogger Nurse_🩺 Gamer_🎮 Real_Estate Yoga_🧘 Foodie Dreamer "
    "Designer Medicine"
)
GENDERED_BIOS = {
    "female": ("Mom of 2 👶", "Wife & mom", "Makeup artist 💄", "Girl boss", "Mama ❤️"),
    "male": ("Dad 👨‍👧", "Husband & father", "Barber ✂️", "Family man", "Proud dad"),
}

HONORIFICS = {None: ("Dr.", "Prof.", "Eng.", "Coach", "Chef"), "male": ("Mr.",), "female": ("Mrs.", "Ms.")}

COUPLE_JOINERS = {"es": " y ", "pt": " e ", "it": " e ", "fr": " et ", "de": " und "}

HANDLE_WORDS = _words(
    "sunset dreamer wanderlust pixel shadow lunar cosmic velvet neon coffee bookworm traveler foodie "
    "gamer skater surfer vibes daily moments photo art life wild soul city star moon ocean golden "
    "happy lost silent urban"
)

BRAND_TEMPLATES = (
    "{food} Palace Official", "{word} Store", "{star} Fan Club", "{city} Eats", "{word} Boutique",
    "{word} Studio", "Daily {topic}", "{word} Fitness", "{city} Real Estate", "{word} Beauty Salon",
    "{city} Barbershop", "{word} Coffee Co.", "{topic} Memes", "{food} House", "{star} Updates",
)
BRAND_PARTS = {
    "food": _words("Pizza Burger Sushi Taco Bagel Donut Vegan Kebab Ramen Waffle"),
    "word": _words("Glow Luxe Urban Golden Royal Sunny Wild Pure Nova Bella Fresh Velvet Mango"),
    "city": _words("NYC London Dubai Paris Lagos Mumbai Istanbul Madrid Berlin Tokyo Seoul Rio"),
    "star": _words("Taylor_Swift BTS Messi Ronaldo Real_Madrid Shakira Bad_Bunny Anitta Beyoncé Blackpink"),
    "topic": _words("Football Cats Dogs Fashion Travel Quotes Motivation Cars Anime Recipes"),
}
