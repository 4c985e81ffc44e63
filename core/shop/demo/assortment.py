"""What the demo store sells: per-category brands and product kinds the simulator draws from.

Each `Kind` describes a family of similar products (a price band, size run, colours, tags and
the sentences their descriptions are built from). `core.shop.demo.generator` turns these into
products.
"""

from __future__ import annotations

from dataclasses import dataclass

APPAREL_SIZES = ("XS", "S", "M", "L", "XL", "XXL")
SHOE_SIZES = ("6", "6.5", "7", "7.5", "8", "8.5", "9", "9.5", "10", "10.5", "11", "12", "13")
OUTDOOR_COLORS = ("black", "navy", "olive", "red", "forest green", "charcoal", "sand", "blue")
CASUAL_COLORS = ("black", "white", "grey", "navy", "burgundy", "beige", "teal", "mustard")
DEVICE_COLORS = ("black", "white", "silver", "midnight blue", "sage green", "rose gold")
HOME_COLORS = ("white", "black", "natural oak", "walnut", "terracotta", "slate grey", "cream")


@dataclass(frozen=True)
class Kind:
    """A family of similar products within a category."""

    subcategory: str
    nouns: tuple[str, ...]
    price: tuple[float, float]
    count: int
    lead: str  # first sentence; may use {noun} and {material}
    # Specific sentences; may use {n}, drawn from `spec`. A leading "[tag] " limits a sentence
    # to products that carry that tag.
    features: tuple[str, ...]
    attributes: tuple[str, ...] = ()  # tags every product of the kind has
    optional: tuple[str, ...] = ()  # tags some products have
    materials: tuple[str, ...] = ("",)
    sizes: tuple[str, ...] = ()
    colors: tuple[str, ...] = ()
    warranty_months: int = 0
    spec: tuple[int, int, int] = (1, 1, 1)  # (low, high, step) for {n}
    titles: tuple[str, ...] = ()  # fixed titles (books) instead of brand + model + noun


@dataclass(frozen=True)
class Department:
    """One category of the store: its slug, its brands and its kinds of product."""

    slug: str
    brands: tuple[str, ...]
    kinds: tuple[Kind, ...]


MODEL_NAMES = (
    "Ridgeline", "Cascade", "Summit", "Alder", "Harbor", "Timber", "Glacier", "Meridian",
    "Solstice", "Juniper", "Crest", "Tundra", "Drift", "Nimbus", "Aspen", "Granite",
    "Pioneer", "Vista", "Ember", "Willow", "Canyon", "Halcyon", "Orbit", "Pulse",
    "Echo", "Nova", "Lumen", "Atlas", "Breeze", "Coral", "Sierra", "Mesa",
    "Boreal", "Quill", "Sable", "Tempo", "Kestrel", "Marlow", "Fjord", "Larch",
)

ATTRIBUTE_NOTES = {
    "vegan": "Made without animal-derived ingredients.",
    "cruelty-free": "Never tested on animals.",
    "fragrance-free": "No added fragrance, so it suits reactive skin.",
    "organic": "Certified organic.",
    "recycled": "Made largely from recycled materials.",
    "packable": "Stuffs into its own pocket for travel.",
    "machine-washable": "Machine washable on a cold, gentle cycle.",
    "dishwasher-safe": "Safe on the top rack of the dishwasher.",
    "bpa-free": "All food-contact parts are BPA-free.",
    "fair-trade": "Sourced from Fair Trade certified cooperatives.",
    "gift-idea": "Arrives in a plain gift-ready box.",
    "water-resistant": "Rated IPX4 against splashes and sweat.",
    "gluten-free": "Certified gluten-free.",
}

DEPARTMENTS: tuple[Department, ...] = (
    Department(
        "outerwear",
        ("Alpenglow", "Northwake", "Fernhill Outfitters", "Stormline", "Kittering & Co."),
        (
            Kind(
                "rain-jackets", ("Rain Jacket", "Rain Shell"), (59, 189), 6,
                "A {noun} cut from {material} that keeps steady rain out on commutes and trails.",
                (
                    "Taped seams and a storm flap keep water out of the front zip.",
                    "Pit zips dump heat on steep climbs.",
                    "The hood adjusts with one pull and has a stiffened brim.",
                    "Rated to a {n} mm waterproof column.",
                    "Two hand pockets sit above a hip belt.",
                ),
                ("waterproof",), ("breathable", "packable", "lightweight", "recycled"),
                ("2.5-layer recycled nylon", "3-layer polyester", "nylon ripstop with PU coating"),
                APPAREL_SIZES, OUTDOOR_COLORS, 24, (10000, 20000, 2000),
            ),
            Kind(
                "insulated-jackets", ("Down Jacket", "Puffer Jacket", "Insulated Hoodie"),
                (99, 329), 6,
                "A warm {noun} filled with {material} for cold mornings and winter walks.",
                (
                    "Comfortable down to about {n} °F when layered over a base layer.",
                    "The quilted baffles are stitched to keep the fill from shifting.",
                    "Elastic cuffs and a drawcord hem trap warmth.",
                    "The shell sheds light snow and drizzle.",
                    "An internal zip pocket holds a phone close to body heat.",
                ),
                ("insulated",), ("packable", "lightweight", "water-resistant", "recycled"),
                ("650-fill responsibly sourced down", "800-fill goose down",
                 "synthetic PrimaLoft-style insulation"),
                APPAREL_SIZES, OUTDOOR_COLORS, 24, (5, 25, 5),
            ),
            Kind(
                "fleece", ("Fleece Jacket", "Fleece Pullover", "Softshell Jacket"), (39, 119), 5,
                "A midweight {noun} in {material} that works alone or under a shell.",
                (
                    "Flatlock seams avoid chafing under a backpack.",
                    "The stand-up collar blocks wind on exposed ridges.",
                    "Thumb loops keep the sleeves in place.",
                    "It dries in a few hours after a wash.",
                ),
                (), ("breathable", "machine-washable", "recycled", "lightweight"),
                ("recycled polyester fleece", "grid fleece", "stretch softshell with brushed back"),
                APPAREL_SIZES, CASUAL_COLORS, 12,
            ),
            Kind(
                "parkas", ("Parka", "Winter Coat"), (159, 399), 4,
                "A long {noun} with {material} built for city winters.",
                (
                    "The hem falls below the hip to keep your seat warm on cold benches.",
                    "A removable faux-fur ruff frames the hood.",
                    "Two-way zip makes it easy to sit and cycle.",
                    "Fleece-lined hand-warmer pockets sit behind the cargo pockets.",
                ),
                ("insulated", "waterproof"), ("windproof", "recycled"),
                ("a waterproof shell and synthetic fill", "wool-blend shell and down fill"),
                APPAREL_SIZES, CASUAL_COLORS, 24,
            ),
        ),
    ),
    Department(
        "footwear",
        ("Trailmark", "Cobble & Stride", "Fleetfoot", "Bramwell", "Oakridge Boot Co."),
        (
            Kind(
                "hiking-boots", ("Hiking Boots", "Mid Hiker", "Trekking Boots"), (89, 239), 6,
                "{noun} with {material} uppers and a lugged rubber outsole for rocky trails.",
                (
                    "[waterproof] A waterproof membrane keeps feet dry through stream crossings.",
                    "The lugs are {n} mm deep for grip on loose gravel.",
                    "A rubber toe cap protects against roots and rocks.",
                    "The heel counter locks the foot in on descents.",
                    "They need little breaking in thanks to a flexible forefoot.",
                ),
                (), ("waterproof", "breathable", "vegan", "lightweight"),
                ("full-grain leather", "suede and mesh", "synthetic nubuck"),
                SHOE_SIZES, ("brown", "grey", "black", "olive", "tan"), 12, (4, 6, 1),
            ),
            Kind(
                "sneakers", ("Sneakers", "Court Shoes", "Canvas Low-Tops"), (49, 139), 5,
                "Everyday {noun} in {material} with a cushioned footbed.",
                (
                    "The cupsole is stitched, not just glued, so it lasts.",
                    "A removable insole makes room for orthotics.",
                    "[recycled] The laces are made from recycled bottles.",
                    "They pair as well with chinos as with jeans.",
                ),
                (), ("vegan", "recycled", "machine-washable"),
                ("organic cotton canvas", "smooth leather", "recycled knit"),
                SHOE_SIZES, CASUAL_COLORS, 6,
            ),
            Kind(
                "boots", ("Chelsea Boots", "Winter Boots", "Rain Boots"), (69, 219), 5,
                "{noun} made of {material} for wet pavements and cold weeks.",
                (
                    "Elastic side panels make them easy to pull on.",
                    "The sole grips on icy sidewalks down to {n} °F.",
                    "A removable wool-blend liner adds warmth.",
                    "The shaft is {n} cm high to clear puddles.",
                ),
                (), ("waterproof", "insulated", "vegan"),
                ("oiled leather", "natural rubber", "waxed suede"),
                SHOE_SIZES, ("black", "brown", "olive", "navy"), 12, (10, 30, 5),
            ),
            Kind(
                "sandals", ("Sandals", "Slides"), (29, 99), 4,
                "Open {noun} with {material} straps for summer days and campsites.",
                (
                    "The contoured cork footbed moulds to your foot over time.",
                    "They rinse clean after the beach.",
                    "Adjustable buckles fit narrow and wide feet.",
                ),
                (), ("vegan", "water-resistant", "lightweight"),
                ("webbing", "leather", "recycled rubber"),
                SHOE_SIZES, ("black", "tan", "olive", "coral"), 6,
            ),
        ),
    ),
    Department(
        "hiking-camping",
        ("Switchback Gear", "Pinecrest", "Cairn & Compass", "Lowland Supply", "Highpoint"),
        (
            Kind(
                "headlamps", ("Headlamp", "Rechargeable Headlamp"), (19, 69), 4,
                "A {noun} that puts out {n} lumens for night hikes and camp chores.",
                (
                    "A red-light mode protects night vision in the tent.",
                    "It charges over USB-C in about three hours.",
                    "The beam tilts through 60 degrees.",
                    "The lock mode stops it switching on inside a pack.",
                ),
                (), ("water-resistant", "lightweight", "gift-idea"),
                ("", "aluminium housing"), (), ("black", "orange", "blue"), 24, (250, 900, 50),
            ),
            Kind(
                "tents", ("Backpacking Tent", "Dome Tent", "Trekking Pole Tent"), (129, 449), 4,
                "A {noun} for {n} people with a {material} fly.",
                (
                    "It pitches in under five minutes with colour-coded clips.",
                    "Two doors mean nobody climbs over anyone at night.",
                    "The vestibules keep boots and packs dry.",
                    "Mesh panels cut condensation on humid nights.",
                ),
                ("waterproof",), ("lightweight", "packable"),
                ("silnylon", "polyester ripstop", "recycled polyester"),
                (), ("green", "orange", "grey"), 24, (1, 4, 1),
            ),
            Kind(
                "sleeping-bags", ("Sleeping Bag", "Camp Quilt"), (79, 299), 4,
                "A {noun} rated to {n} °F with {material} fill.",
                (
                    "The hood cinches down without catching on the zip.",
                    "It compresses to the size of a loaf of bread.",
                    "A draft collar stops warm air escaping at the shoulders.",
                ),
                ("insulated",), ("packable", "lightweight"),
                ("synthetic", "650-fill down", "850-fill down"),
                ("regular", "long"), ("blue", "red", "olive"), 24, (15, 40, 5),
            ),
            Kind(
                "camp-accessories",
                ("Insulated Water Bottle", "Trekking Poles", "Camp Mug Set", "Pocket Multi-Tool"),
                (15, 79), 8,
                "A {noun} made of {material} that earns its place in a daypack.",
                (
                    "It weighs about {n} grams.",
                    "A good gift for anyone who hikes on weekends.",
                    "Every part can be replaced individually.",
                ),
                (), ("lightweight", "bpa-free", "gift-idea", "dishwasher-safe"),
                ("stainless steel", "aluminium"),
                (), ("black", "blue", "green", "red"), 12, (80, 400, 20),
            ),
        ),
    ),
    Department(
        "running-fitness",
        ("Stridewell", "Pacemark", "Kinetica", "Hollis Athletic", "Runfold"),
        (
            Kind(
                "running-shoes", ("Running Shoes", "Trail Runners", "Road Trainers"), (79, 189), 6,
                "{noun} with a {material} upper and a {n} mm heel-to-toe drop.",
                (
                    "The foam midsole stays springy for about 500 miles.",
                    "A wider toe box leaves room for swelling on long runs.",
                    "Reflective details show up in headlights.",
                    "The outsole rubber is placed only where wear is highest.",
                ),
                (), ("breathable", "lightweight", "waterproof", "vegan"),
                ("engineered mesh", "recycled knit"), SHOE_SIZES,
                ("black", "white", "blue", "coral", "volt yellow"), 6, (4, 10, 2),
            ),
            Kind(
                "activewear", ("Running Tights", "Training Tee", "Running Shorts", "Sports Bra"),
                (19, 79), 7,
                "A {noun} in {material} that moves with you.",
                (
                    "Flat seams prevent chafing over long distances.",
                    "A zipped back pocket fits a phone.",
                    "It wicks sweat and dries quickly.",
                    "Reflective trims help at dusk.",
                ),
                ("breathable",), ("lightweight", "recycled", "machine-washable"),
                ("recycled polyester", "nylon-elastane", "merino blend"),
                APPAREL_SIZES, ("black", "navy", "coral", "teal", "grey"), 0,
            ),
            Kind(
                "fitness-gear", ("Yoga Mat", "Resistance Band Set", "Adjustable Dumbbell",
                                 "Foam Roller", "Jump Rope"),
                (15, 149), 7,
                "A {noun} made from {material} for home workouts.",
                (
                    "It stores flat under a bed or sofa.",
                    "Comes with a printed guide of {n} exercises.",
                    "The grip surface stays put on sweaty palms.",
                    "It rinses clean with soap and water.",
                ),
                (), ("non-slip", "vegan", "gift-idea"),
                ("natural rubber", "TPE foam", "steel and rubber"),
                (), ("black", "purple", "teal", "grey"), 12, (10, 30, 5),
            ),
        ),
    ),
    Department(
        "skincare",
        ("Dewlight", "Marisol Botanics", "Clearfield Labs", "Oura Skin", "Hale & Fern"),
        (
            Kind(
                "moisturizers", ("Moisturizer", "Face Cream", "Barrier Cream", "Gel Cream"),
                (14, 64), 7,
                "A {noun} with {material} for dry skin that feels tight or flaky.",
                (
                    "It sinks in within a minute and works under makeup.",
                    "Ceramides help repair a skin barrier stripped by winter air.",
                    "Dermatologist-tested on sensitive skin.",
                    "Use it morning and night after cleansing.",
                    "The airless pump keeps the formula fresh to the last drop.",
                ),
                ("for-dry-skin",), ("fragrance-free", "vegan", "cruelty-free", "organic"),
                ("ceramides and squalane", "hyaluronic acid and shea butter",
                 "oat extract and glycerin"),
                ("50 ml", "100 ml"), (), 0,
            ),
            Kind(
                "cleansers", ("Gentle Cleanser", "Cleansing Balm", "Foaming Cleanser"), (9, 36), 5,
                "A {noun} with {material} that removes sunscreen without a tight feeling.",
                (
                    "Its pH is balanced at 5.5.",
                    "It rinses off completely with lukewarm water.",
                    "Suitable for daily use, morning and evening.",
                ),
                (), ("fragrance-free", "vegan", "cruelty-free", "for-oily-skin"),
                ("green tea", "oat milk", "salicylic acid"), ("150 ml", "250 ml"), (), 0,
            ),
            Kind(
                "serums", ("Vitamin C Serum", "Niacinamide Serum", "Retinol Serum"), (18, 72), 4,
                "A {noun} with {material} for uneven tone and texture.",
                (
                    "Start twice a week and build up to nightly use.",
                    "The dropper bottle is tinted to protect the formula from light.",
                    "Visible results are usually reported after {n} weeks.",
                ),
                (), ("vegan", "cruelty-free", "fragrance-free"),
                ("10% niacinamide", "15% vitamin C", "0.3% retinol"),
                ("30 ml",), (), 0, (4, 8, 2),
            ),
            Kind(
                "sunscreen", ("Daily Sunscreen", "Mineral Sunscreen"), (12, 38), 4,
                "An SPF {n} {noun} with {material} that leaves no white cast.",
                (
                    "Water-resistant for 40 minutes of swimming.",
                    "Reapply every two hours outdoors.",
                    "It doubles as a light moisturizer.",
                ),
                (), ("fragrance-free", "cruelty-free", "vegan", "for-dry-skin"),
                ("zinc oxide", "chemical UV filters"), ("50 ml",), (), 0, (30, 50, 20),
            ),
        ),
    ),
    Department(
        "haircare",
        ("Tressa", "Roots & Rye", "Silkwell", "Barrow Grooming"),
        (
            Kind(
                "shampoo", ("Shampoo", "Clarifying Shampoo", "Shampoo Bar"), (8, 32), 6,
                "A {noun} with {material} for everyday washing.",
                (
                    "[sulfate-free] It is sulfate-free, so colour lasts longer.",
                    "One bottle lasts about {n} washes.",
                    "Gentle enough for a dry, itchy scalp.",
                ),
                (), ("vegan", "cruelty-free", "sulfate-free", "organic"),
                ("argan oil", "tea tree oil", "rice protein"), ("250 ml", "500 ml"), (), 0,
                (40, 80, 10),
            ),
            Kind(
                "conditioners", ("Conditioner", "Hair Mask", "Leave-In Conditioner"), (9, 36), 5,
                "A {noun} with {material} that detangles without weighing hair down.",
                (
                    "Leave it on for three minutes for dry ends.",
                    "It helps curls hold their shape.",
                    "Works on bleached and colour-treated hair.",
                ),
                (), ("vegan", "cruelty-free", "silicone-free"),
                ("shea butter", "coconut oil", "oat protein"), ("200 ml", "400 ml"), (), 0,
            ),
            Kind(
                "hair-tools", ("Hair Dryer", "Straightener", "Curling Wand"), (39, 189), 5,
                "A {noun} with {material} plates or heads and {n} heat settings.",
                (
                    "It heats up in under 30 seconds.",
                    "Automatic shut-off after an hour of idle time.",
                    "A 2.5 m swivel cord does not tangle.",
                    "Dual voltage for travel abroad.",
                ),
                (), ("lightweight", "gift-idea"),
                ("ceramic", "tourmaline", "titanium"), (), ("black", "white", "rose gold"), 24,
                (3, 6, 1),
            ),
            Kind(
                "styling", ("Styling Cream", "Texture Spray", "Hair Oil"), (10, 34), 4,
                "A {noun} with {material} for hold that still moves.",
                (
                    "A pea-sized amount is enough for short hair.",
                    "It washes out without residue.",
                    "Protects from heat styling up to 450 °F.",
                ),
                (), ("vegan", "cruelty-free", "fragrance-free"),
                ("beeswax-free plant waxes", "argan oil", "sea salt"), ("100 ml",), (), 0,
            ),
        ),
    ),
    Department(
        "makeup",
        ("Lumière Rouge", "Petal & Pigment", "Bare Theory", "Coastline Cosmetics"),
        (
            Kind(
                "lips", ("Lipstick", "Tinted Lip Balm", "Liquid Lipstick"), (9, 32), 6,
                "A {noun} with {material} in a satin finish.",
                (
                    "It lasts about {n} hours before a touch-up.",
                    "Comfortable enough to wear all day without drying lips.",
                    "The bullet is shaped for precise edges.",
                ),
                (), ("vegan", "cruelty-free", "long-wearing"),
                ("shea butter", "jojoba oil"), (),
                ("nude", "rose", "berry", "coral", "classic red", "mauve"), 0, (4, 8, 2),
            ),
            Kind(
                "face", ("Foundation", "Concealer", "Tinted Moisturizer", "Blush"), (14, 48), 7,
                "A {noun} with {material} for a natural finish.",
                (
                    "Available in {n} shades across light to deep skin tones.",
                    "It builds from sheer to medium coverage.",
                    "Non-comedogenic and suitable for acne-prone skin.",
                    "Blends with fingers, brush or sponge.",
                ),
                (), ("vegan", "cruelty-free", "fragrance-free", "long-wearing"),
                ("hyaluronic acid", "mineral pigments"), (),
                ("fair", "light", "medium", "tan", "deep"), 0, (20, 40, 4),
            ),
            Kind(
                "eyes", ("Mascara", "Eyeliner", "Eyeshadow Palette", "Brow Pencil"), (9, 54), 7,
                "A {noun} made with {material} that does not smudge.",
                (
                    "Removes with warm water, no scrubbing.",
                    "Tested by ophthalmologists for contact-lens wearers.",
                    "Stays put through a full day, about {n} hours.",
                    "Builds in thin layers without clumping.",
                ),
                (), ("vegan", "cruelty-free", "waterproof", "gift-idea"),
                ("carnauba wax", "mineral pigments"), (),
                ("black", "brown", "taupe", "plum"), 0, (6, 12, 3),
            ),
        ),
    ),
    Department(
        "headphones-audio",
        ("Sonora", "Quietwave", "Bassline Audio", "Halden Acoustics", "Arcbeat"),
        (
            Kind(
                "over-ear", ("Wireless Headphones", "Over-Ear Headphones",
                             "Noise-Cancelling Headphones"),
                (59, 379), 7,
                "{noun} with 40 mm drivers and up to {n} hours of battery life.",
                (
                    "[noise-cancelling] Active noise cancelling cuts engine hum on flights.",
                    "Multipoint pairing switches between a laptop and a phone.",
                    "The ear cushions use memory foam wrapped in protein leather.",
                    "A 10-minute charge gives about four hours of playback.",
                    "[foldable] They fold flat into a hard case.",
                ),
                ("wireless", "bluetooth"), ("noise-cancelling", "foldable", "gift-idea"),
                ("",), (), DEVICE_COLORS, 12, (20, 60, 5),
            ),
            Kind(
                "earbuds", ("Wireless Earbuds", "Sport Earbuds", "True Wireless Earbuds"),
                (29, 249), 7,
                "{noun} that last {n} hours per charge, with more in the case.",
                (
                    "Three sizes of silicone tips are included.",
                    "Ear hooks keep them in during sprints.",
                    "Transparency mode lets you hear traffic.",
                    "The case charges wirelessly.",
                ),
                ("wireless", "bluetooth"), ("noise-cancelling", "water-resistant"),
                ("",), (), DEVICE_COLORS, 12, (5, 10, 1),
            ),
            Kind(
                "speakers", ("Portable Speaker", "Bookshelf Speakers", "Smart Speaker"),
                (39, 299), 6,
                "A {noun} that fills a room and plays for {n} hours unplugged.",
                (
                    "Two can be paired for stereo sound.",
                    "A passive radiator adds bass without distortion.",
                    "The controls on top are easy to find by feel.",
                ),
                ("bluetooth",), ("wireless", "waterproof", "gift-idea"),
                ("fabric and aluminium", "walnut veneer"), (), DEVICE_COLORS, 12, (8, 24, 4),
            ),
        ),
    ),
    Department(
        "phones-accessories",
        ("Voltcase", "Gridline", "Tether & Co.", "Amperly"),
        (
            Kind(
                "cases", ("Phone Case", "Wallet Case", "Rugged Case"), (14, 49), 7,
                "A slim {noun} in {material} that survives {n} ft drops.",
                (
                    "Raised edges protect the camera and screen.",
                    "Works with magnetic wireless chargers.",
                    "The button covers stay clicky.",
                    "A card pocket holds two cards.",
                ),
                (), ("recycled", "vegan"),
                ("recycled TPU", "vegan leather", "polycarbonate"),
                ("6.1 in", "6.7 in"), ("black", "clear", "navy", "sage green", "rose"), 12,
                (6, 12, 2),
            ),
            Kind(
                "chargers", ("Fast Charger", "Wireless Charging Pad", "Power Bank", "USB-C Cable"),
                (12, 79), 8,
                "A {noun} with {material} delivering up to {n} W.",
                (
                    "Charges a phone to 50% in about 30 minutes.",
                    "Certified for use with current phones and tablets.",
                    "Over-heat and over-current protection built in.",
                    "Comes in plastic-free packaging.",
                ),
                (), ("wireless", "fast-charging", "gift-idea"),
                ("GaN circuitry", "aluminium shell"), (), ("black", "white"), 18, (15, 65, 5),
            ),
            Kind(
                "mounts", ("Car Mount", "Phone Stand", "Bike Phone Mount"), (15, 45), 5,
                "A {noun} in {material} that holds phones firmly.",
                (
                    "One-handed mounting and release.",
                    "Rotates a full 360 degrees.",
                    "Fits phones up to 6.9 inches.",
                ),
                (), ("magnetic", "adjustable"), ("aluminium", "ABS plastic"), (),
                ("black", "silver"), 12,
            ),
        ),
    ),
    Department(
        "smart-home",
        ("Hearthlink", "Brightnest", "Lumio", "Homewise"),
        (
            Kind(
                "lighting", ("Smart Bulb 2-Pack", "Smart Light Strip", "Smart Lamp"), (19, 89), 7,
                "A {noun} that shows 16 million colours and tunable whites.",
                (
                    "Works with common voice assistants without a hub.",
                    "Schedules dim the lights at bedtime.",
                    "Uses about {n} W at full brightness.",
                    "A sunrise routine brightens slowly before your alarm.",
                ),
                ("wireless",), ("energy-saving", "voice-control"),
                ("",), (), ("white", "black"), 24, (7, 12, 1),
            ),
            Kind(
                "security", ("Video Doorbell", "Indoor Camera", "Outdoor Camera", "Smart Lock"),
                (39, 249), 7,
                "A {noun} with {n}p video and two-way talk.",
                (
                    "Motion zones ignore passing cars.",
                    "Clips are stored locally on a microSD card, no subscription needed.",
                    "Night vision reaches about 30 feet.",
                    "Runs on a battery that lasts months between charges.",
                ),
                ("wireless",), ("weatherproof", "voice-control"),
                ("",), (), ("white", "black", "silver"), 24, (1080, 1440, 360),
            ),
            Kind(
                "climate", ("Smart Thermostat", "Smart Plug 4-Pack", "Air Quality Monitor"),
                (24, 199), 6,
                "A {noun} you control from your phone.",
                (
                    "Energy reports show where power goes each month.",
                    "Installs in about {n} minutes.",
                    "Away mode saves energy when nobody is home.",
                ),
                ("wireless",), ("energy-saving", "voice-control"),
                ("",), (), ("white", "black"), 24, (10, 30, 5),
            ),
        ),
    ),
    Department(
        "kitchen",
        ("Copperleaf", "Hearth & Table", "Pantrywell", "Kiln Kitchen", "Brisket & Bloom"),
        (
            Kind(
                "cookware", ("Skillet", "Dutch Oven", "Saucepan", "Nonstick Pan"), (29, 249), 7,
                "A {n}-inch {noun} in {material} that goes from stovetop to oven.",
                (
                    "Works on induction, gas and electric hobs.",
                    "Oven-safe up to 500 °F.",
                    "The handle stays cool during simmering.",
                    "The lid fits snugly to hold in steam.",
                ),
                (), ("induction-ready", "pfas-free"),
                ("cast iron", "enamelled cast iron", "tri-ply stainless steel", "carbon steel"),
                (), ("black", "red", "cream", "navy", "stainless"), 60, (8, 12, 2),
            ),
            Kind(
                "appliances", ("Blender", "Stand Mixer", "Air Fryer", "Electric Kettle"),
                (39, 349), 7,
                "A {noun} with a {n}-watt motor for everyday cooking.",
                (
                    "Parts that touch food come apart for washing.",
                    "Preset programs take the guesswork out.",
                    "It is quiet enough for early mornings.",
                    "A cord wrap keeps the counter tidy.",
                ),
                (), ("bpa-free", "dishwasher-safe"),
                ("brushed steel", "glass and steel"), (),
                ("black", "white", "silver", "sage green"), 24, (600, 1500, 100),
            ),
            Kind(
                "tools", ("Chef's Knife", "Cutting Board", "Knife Set", "Utensil Set"),
                (15, 179), 6,
                "A {noun} made of {material} for daily prep.",
                (
                    "Made to last decades with simple care.",
                    "Sized to fit a standard kitchen drawer.",
                    "Backed by a free refinishing service for ten years.",
                ),
                (), ("gift-idea", "dishwasher-safe"),
                ("German steel", "acacia wood", "Japanese steel", "bamboo"), (),
                ("natural", "black"), 12,
            ),
        ),
    ),
    Department(
        "coffee-tea",
        ("Roastwell", "Kettle & Leaf", "Morning Field", "Bluestem Roasters"),
        (
            Kind(
                "coffee", ("Whole Bean Coffee", "Ground Coffee", "Espresso Blend"), (12, 29), 7,
                "A {noun} of {material} beans, roasted in small batches.",
                (
                    "Tasting notes: dark chocolate, cherry and toasted almond.",
                    "Roasted to order and shipped within {n} days.",
                    "Suits pour-over, French press and drip machines.",
                    "A medium roast that stays sweet as it cools.",
                ),
                (), ("organic", "fair-trade", "gluten-free"),
                ("Ethiopian", "Colombian", "Guatemalan", "Sumatran"), ("12 oz", "2 lb"), (), 0,
                (2, 4, 1),
            ),
            Kind(
                "tea", ("Loose Leaf Tea", "Tea Sampler", "Matcha"), (9, 39), 6,
                "A {noun} of {material} for a calm afternoon cup.",
                (
                    "Steep for {n} minutes at just below boiling.",
                    "Each tin makes about 40 cups.",
                    "A resealable tin keeps the leaves fresh.",
                ),
                (), ("organic", "fair-trade", "gluten-free", "gift-idea"),
                ("Darjeeling", "sencha green tea", "rooibos", "chamomile"), (), (), 0, (2, 5, 1),
            ),
            Kind(
                "brewing", ("Pour-Over Set", "French Press", "Burr Grinder", "Gooseneck Kettle"),
                (25, 189), 7,
                "A {noun} in {material} for better coffee at home.",
                (
                    "Comes with a printed brew guide of {n} recipes.",
                    "Its weight sits low, so it does not tip.",
                    "Replacement parts are sold separately for years.",
                    "All parts come apart for cleaning.",
                ),
                (), ("gift-idea", "dishwasher-safe", "bpa-free"),
                ("borosilicate glass", "stainless steel", "ceramic"), (),
                ("black", "white", "copper", "matte grey"), 12, (15, 40, 5),
            ),
        ),
    ),
    Department(
        "home-decor",
        ("Linen & Loom", "Oakhaven Home", "Stillwater Living", "Marigold House"),
        (
            Kind(
                "textiles", ("Throw Blanket", "Cushion Cover", "Area Rug", "Linen Curtains"),
                (19, 249), 7,
                "A {noun} woven from {material} to soften a room.",
                (
                    "Pre-washed so it will not shrink.",
                    "Fringed edges are hand-knotted.",
                    "Measures about {n} inches on its longest side.",
                    "Colour-fast through many washes.",
                ),
                (), ("machine-washable", "organic", "handmade"),
                ("organic cotton", "stonewashed linen", "wool blend", "jute"), (),
                HOME_COLORS, 0, (50, 96, 6),
            ),
            Kind(
                "lighting-decor", ("Table Lamp", "Floor Lamp", "Pendant Light"), (39, 229), 6,
                "A {noun} with a {material} base and a warm, diffused glow.",
                (
                    "Takes a standard E26 bulb (not included).",
                    "An inline dimmer sits on the cord.",
                    "Stands {n} inches tall.",
                ),
                (), ("energy-saving", "handmade"), ("ceramic", "brass", "oak", "rattan"), (),
                HOME_COLORS, 12, (18, 62, 4),
            ),
            Kind(
                "accents", ("Scented Candle", "Ceramic Vase", "Wall Mirror", "Picture Frame Set"),
                (14, 129), 7,
                "A {noun} in {material} that fits a shelf or mantel.",
                (
                    "Designed in a small studio and made in limited runs.",
                    "Measures about {n} cm at its widest.",
                    "Packed in recycled paper with no plastic.",
                ),
                (), ("handmade", "gift-idea", "vegan"),
                ("stoneware", "soy wax", "recycled glass", "brass"), (), HOME_COLORS, 0,
                (40, 60, 5),
            ),
        ),
    ),
    Department(
        "bags-travel",
        ("Wayfarer Goods", "Portside", "Lanyard & Lock", "Roamly"),
        (
            Kind(
                "backpacks", ("Daypack", "Laptop Backpack", "Travel Backpack"), (39, 189), 7,
                "A {n}-litre {noun} in {material} for commutes and weekend trips.",
                (
                    "A padded sleeve fits a 16-inch laptop.",
                    "The back panel is ventilated for hot days.",
                    "It opens flat like a suitcase at airport security.",
                    "A hidden pocket keeps the passport against your back.",
                ),
                (), ("water-resistant", "recycled", "lightweight", "carry-on-size"),
                ("recycled nylon", "waxed canvas", "ballistic nylon"), (),
                ("black", "navy", "olive", "grey", "rust"), 24, (18, 40, 2),
            ),
            Kind(
                "luggage", ("Carry-On Suitcase", "Checked Suitcase", "Duffel Bag"), (79, 349), 7,
                "A {noun} in {material} built for years of trips.",
                (
                    "Handles and zips are tested for 20,000 cycles.",
                    "An expansion zip adds {n}% more room for the trip home.",
                    "Compression straps keep clothes flat.",
                    "Backed by a lifetime repair promise for wheels and handles.",
                ),
                (), ("lightweight", "carry-on-size", "water-resistant"),
                ("polycarbonate", "aluminium", "recycled nylon"), (),
                ("black", "navy", "sand", "forest green"), 60, (15, 30, 5),
            ),
            Kind(
                "travel-accessories", ("Packing Cubes", "Travel Pillow", "Toiletry Bag",
                                       "Passport Wallet"),
                (12, 49), 6,
                "A {noun} in {material} that keeps a trip organised.",
                (
                    "The set weighs under {n} grams.",
                    "Mesh panels show what is inside.",
                    "It clips to a suitcase handle.",
                ),
                (), ("lightweight", "gift-idea", "recycled"),
                ("ripstop nylon", "memory foam", "vegan leather"), (),
                ("black", "grey", "teal", "mustard"), 12, (100, 400, 50),
            ),
        ),
    ),
    Department(
        "toys-games",
        ("Puzzlewood", "Little Lantern", "Tabletop Tavern", "Brickhollow"),
        (
            Kind(
                "board-games", ("Board Game", "Card Game", "Cooperative Game"), (14, 69), 7,
                "A {noun} for 2 to {n} players that plays in under an hour.",
                (
                    "Rules are learned in ten minutes.",
                    "Works well with a mix of adults and kids.",
                    "The components are made of thick recycled card.",
                ),
                (), ("family-friendly", "gift-idea"), ("recycled card",), (), (), 0, (4, 8, 1),
            ),
            Kind(
                "puzzles", ("Jigsaw Puzzle", "3D Puzzle", "Puzzle Box"), (15, 45), 6,
                "A {n}-piece {noun} printed on {material}.",
                (
                    "Pieces are cut so that none are identical.",
                    "A poster of the image is included.",
                    "Good for a rainy weekend.",
                ),
                (), ("gift-idea", "family-friendly"), ("recycled board", "birch plywood"), (), (),
                0, (500, 1500, 250),
            ),
            Kind(
                "kids-toys", ("Building Set", "Wooden Train Set", "Plush Toy", "Science Kit"),
                (12, 89), 7,
                "A {noun} made of {material} for ages {n} and up.",
                (
                    "The box doubles as storage.",
                    "Paints are water-based and non-toxic.",
                    "Includes a storage bag for the pieces.",
                ),
                (), ("family-friendly", "gift-idea", "non-toxic"),
                ("FSC-certified beech", "recycled plastic", "organic cotton"), (), (), 0,
                (3, 8, 1),
            ),
        ),
    ),
    Department(
        "books",
        ("Lanternfish Press", "Harrow Books", "Greenway Publishing", "Quarry House"),
        (
            Kind(
                "fiction", (), (12, 28), 6,
                "A {material} novel, {n} pages.",
                (
                    "Told across two summers in a coastal town.",
                    "Short chapters make it an easy read before bed.",
                    "A book-club favourite with discussion questions at the back.",
                ),
                (), ("bestseller", "gift-idea"), ("paperback", "hardcover"), (), (), 0,
                (240, 480, 40),
                titles=(
                    "The Lighthouse Keeper's Daughter", "Salt and Cedar", "A Map of Quiet Roads",
                    "The Winter Orchard", "Letters from Harbor Street", "Under the Alder Moon",
                ),
            ),
            Kind(
                "outdoors-travel", (), (15, 35), 6,
                "A {material} guide, {n} pages, with maps and photos.",
                (
                    "Each route lists distance, elevation gain and water sources.",
                    "Written by a former national park ranger.",
                    "Small enough to carry on the trail.",
                ),
                (), ("gift-idea", "illustrated"), ("paperback", "flexibound"), (), (), 0,
                (180, 320, 20),
                titles=(
                    "Fifty Day Hikes of the Pacific Northwest", "The Ultralight Backpacker",
                    "Camp Cooking Made Simple", "Wild Swimming Spots", "The Thru-Hiker's Handbook",
                    "Reading the Trail: A Field Guide to Tracks and Signs",
                ),
            ),
            Kind(
                "cookbooks", (), (18, 45), 5,
                "A {material} cookbook, {n} pages.",
                (
                    "Recipes use ingredients from an ordinary supermarket.",
                    "Every recipe has a photo.",
                    "Includes a chapter on weeknight dinners in 30 minutes.",
                ),
                (), ("gift-idea", "illustrated", "vegan"), ("hardcover",), (), (), 0,
                (200, 360, 20),
                titles=(
                    "The Cast Iron Kitchen", "Plants on a Plate", "Slow Sunday Bakes",
                    "The Home Barista", "One Pot, Many Nights",
                ),
            ),
            Kind(
                "kids-books", (), (7, 19), 4,
                "A {material} picture book for ages {n} to 8.",
                (
                    "Bright illustrations on every page.",
                    "Made for reading aloud at bedtime.",
                    "The thick pages stand up to small hands.",
                ),
                (), ("gift-idea", "illustrated", "family-friendly"), ("hardcover", "board book"),
                (), (), 0, (3, 5, 1),
                titles=(
                    "Otter Goes Camping", "The Tiny Tea Party", "Where the Puffins Sleep",
                    "Max and the Marvelous Map",
                ),
            ),
        ),
    ),
)

# Categories bought together with (or after) a category: a jacket buyer looks at boots next.
COMPLEMENTS: dict[str, tuple[str, ...]] = {
    "outerwear": ("footwear", "hiking-camping", "bags-travel"),
    "footwear": ("hiking-camping", "running-fitness", "outerwear"),
    "hiking-camping": ("outerwear", "footwear", "bags-travel"),
    "running-fitness": ("headphones-audio", "footwear"),
    "skincare": ("makeup", "haircare"),
    "haircare": ("skincare",),
    "makeup": ("skincare",),
    "headphones-audio": ("phones-accessories", "running-fitness"),
    "phones-accessories": ("headphones-audio", "smart-home"),
    "smart-home": ("home-decor", "phones-accessories"),
    "kitchen": ("coffee-tea", "home-decor"),
    "coffee-tea": ("kitchen", "books"),
    "home-decor": ("kitchen", "smart-home"),
    "bags-travel": ("outerwear", "phones-accessories"),
    "toys-games": ("books",),
    "books": ("coffee-tea", "toys-games"),
}
