-- A version-4 issuer database as the last version-4 build made it: posbridge issuer
-- init (demo data: public test BDK, test PANs, PIN 1234 as scrypt hashes), then a
-- balance inquiry and a purchase on 4761730000000011 and a wrong PIN on
-- 4761730000000029. The migration tests load it with sqlite3 executescript.
BEGIN TRANSACTION;
CREATE TABLE account_events (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        card_id INTEGER REFERENCES cards(id),
        event TEXT NOT NULL,
        old_value TEXT,
        new_value TEXT,
        created_at INTEGER NOT NULL
    );
CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        number TEXT NOT NULL UNIQUE,
        currency INTEGER NOT NULL CHECK (currency BETWEEN 1 AND 999),
        available INTEGER NOT NULL,
        ledger INTEGER NOT NULL,
        credit_limit INTEGER NOT NULL DEFAULT 0,
        purchase_limit INTEGER CHECK (purchase_limit IS NULL OR purchase_limit > 0),
        statement_amount INTEGER,
        minimum_payment INTEGER,
        due_date TEXT                                   -- YYYY-MM-DD
    );
INSERT INTO "accounts" VALUES(1,'ACC000001',156,1233317,1233317,2000000,NULL,234500,23450,'2026-12-10');
INSERT INTO "accounts" VALUES(2,'ACC000002',156,88000,88000,0,NULL,NULL,NULL,NULL);
INSERT INTO "accounts" VALUES(3,'ACC000003',156,500000,500000,1000000,200000,100000,10000,'2026-12-10');
INSERT INTO "accounts" VALUES(4,'ACC000004',156,30000,30000,0,NULL,NULL,NULL,NULL);
INSERT INTO "accounts" VALUES(5,'ACC000005',156,70000,70000,0,NULL,NULL,NULL,NULL);
INSERT INTO "accounts" VALUES(6,'ACC000006',156,150000,150000,0,NULL,NULL,NULL,NULL);
INSERT INTO "accounts" VALUES(7,'ACC000007',156,99900,99900,0,NULL,NULL,NULL,NULL);
CREATE TABLE alert_channels (
        cardholder_id INTEGER NOT NULL REFERENCES cardholders(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        channel TEXT NOT NULL CHECK (channel IN ('sms', 'app')),
        PRIMARY KEY (cardholder_id, kind)
    );
CREATE TABLE alert_kinds (
        cardholder_id INTEGER NOT NULL REFERENCES cardholders(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        PRIMARY KEY (cardholder_id, kind)
    );
INSERT INTO "alert_kinds" VALUES(1,'purchase');
INSERT INTO "alert_kinds" VALUES(1,'balance_inquiry');
INSERT INTO "alert_kinds" VALUES(1,'wrong_pin');
INSERT INTO "alert_kinds" VALUES(1,'large_amount');
INSERT INTO "alert_kinds" VALUES(1,'account_change');
INSERT INTO "alert_kinds" VALUES(1,'repayment_reminder');
INSERT INTO "alert_kinds" VALUES(2,'balance_inquiry');
INSERT INTO "alert_kinds" VALUES(2,'purchase');
INSERT INTO "alert_kinds" VALUES(2,'wrong_pin');
INSERT INTO "alert_kinds" VALUES(3,'purchase');
INSERT INTO "alert_kinds" VALUES(3,'balance_inquiry');
INSERT INTO "alert_kinds" VALUES(3,'wrong_pin');
INSERT INTO "alert_kinds" VALUES(3,'large_amount');
INSERT INTO "alert_kinds" VALUES(3,'account_change');
INSERT INTO "alert_kinds" VALUES(3,'repayment_reminder');
INSERT INTO "alert_kinds" VALUES(4,'balance_inquiry');
INSERT INTO "alert_kinds" VALUES(4,'purchase');
INSERT INTO "alert_kinds" VALUES(4,'wrong_pin');
INSERT INTO "alert_kinds" VALUES(5,'balance_inquiry');
INSERT INTO "alert_kinds" VALUES(5,'purchase');
INSERT INTO "alert_kinds" VALUES(5,'wrong_pin');
INSERT INTO "alert_kinds" VALUES(6,'balance_inquiry');
INSERT INTO "alert_kinds" VALUES(6,'purchase');
INSERT INTO "alert_kinds" VALUES(6,'wrong_pin');
INSERT INTO "alert_kinds" VALUES(7,'purchase');
CREATE TABLE cardholders (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        phone TEXT,
        subscribed INTEGER NOT NULL DEFAULT 0 CHECK (subscribed IN (0, 1)),
        channel TEXT NOT NULL DEFAULT 'sms' CHECK (channel IN ('sms', 'app')),
        threshold INTEGER CHECK (threshold IS NULL OR threshold >= 0),
        large_amount_limit INTEGER CHECK (large_amount_limit IS NULL OR large_amount_limit >= 0),
        quiet_hours TEXT,                               -- "22:00-07:00"
        language TEXT CHECK (language IS NULL OR language IN ('en', 'zh'))
    );
INSERT INTO "cardholders" VALUES(1,'Li Wei','13812345678',1,'sms',NULL,NULL,NULL,NULL);
INSERT INTO "cardholders" VALUES(2,'Zhang Min','13987654321',0,'sms',NULL,NULL,NULL,NULL);
INSERT INTO "cardholders" VALUES(3,'Wang Fang','13700001111',1,'app',10000,NULL,'22:00-07:00','zh');
INSERT INTO "cardholders" VALUES(4,'Chen Jie',NULL,1,'sms',NULL,NULL,NULL,NULL);
INSERT INTO "cardholders" VALUES(5,'Liu Yang','13600002222',1,'sms',NULL,NULL,NULL,NULL);
INSERT INTO "cardholders" VALUES(6,'Zhao Lei','13500003333',1,'sms',NULL,NULL,NULL,NULL);
INSERT INTO "cardholders" VALUES(7,'Sun Li','13400004444',1,'sms',50000,NULL,NULL,NULL);
CREATE TABLE cards (
        id INTEGER PRIMARY KEY,
        pan TEXT NOT NULL UNIQUE,
        expiry TEXT NOT NULL CHECK (length(expiry) = 4),
        status TEXT NOT NULL DEFAULT 'active'
            CHECK (status IN ('active', 'frozen', 'blocked')),
        pin_hash TEXT NOT NULL,
        pin_tries_left INTEGER NOT NULL CHECK (pin_tries_left >= 0),
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        cardholder_id INTEGER NOT NULL REFERENCES cardholders(id),
        purchase_limit INTEGER CHECK (purchase_limit IS NULL OR purchase_limit > 0)
    );
INSERT INTO "cards" VALUES(1,'4761730000000011','3012','active','scrypt$16384$8$1$13979919c713d2602df5c9cbf910fe91$0c652c17f3cca0d8ee84ae9059b2a240981f70ee0b58fae44cae20f3b750de33',3,1,1,500000);
INSERT INTO "cards" VALUES(2,'4761730000000029','3012','active','scrypt$16384$8$1$ec4823a1c78bd456cbb55e2c848ba687$32e9a318418a30e876e7e4996ffcbc138a826935b9a484d874566ab32fb0cbaf',2,2,2,NULL);
INSERT INTO "cards" VALUES(3,'4761730000000037','3012','active','scrypt$16384$8$1$e28dccccc34c72ce20391ef7fc5c8c2f$43c8635d90a4772fa57829fe165b58f129acef86c410df6b62f892e0a0bf1b60',3,3,3,NULL);
INSERT INTO "cards" VALUES(4,'4761730000000045','3012','active','scrypt$16384$8$1$8d8b1414aeb0ed875ba29d7e904b7928$18074ba72d78d87d97f0649f2a1edf2307749b0496cda474e0c23dad6302a286',3,4,4,NULL);
INSERT INTO "cards" VALUES(5,'6225880000000050','2101','active','scrypt$16384$8$1$fa8dcaacd9dac7c322e2fdb357af715c$39cfb65ebda298ca9857ea7513e81a52c2796c5ac57e690a58eeed4749b85edb',3,5,5,NULL);
INSERT INTO "cards" VALUES(6,'6225880000000068','3012','frozen','scrypt$16384$8$1$4f0f18e6f1b8ecd3fbfb7299bdf7c654$abf345f9c637d858c69f5ae6a6cfa65ca27a027178cdcf676726b17e7f311754',3,6,6,NULL);
INSERT INTO "cards" VALUES(7,'6225880000000076','3012','active','scrypt$16384$8$1$66d1b1e56c7377a56352a1a6d4f756f6$f5a6cde5758b0c4741ded3d092e2aff6ada13151ce36881825a4e6da22b0d258',3,7,7,NULL);
CREATE TABLE key_sets (
        bdk_id TEXT PRIMARY KEY CHECK (length(bdk_id) = 8),
        bdk TEXT NOT NULL CHECK (length(bdk) = 32),
        label TEXT NOT NULL DEFAULT ''
    );
INSERT INTO "key_sets" VALUES('12345678','FEDCBA9876543210F1F1F1F1F1F1F1F1','ANSI X9.24-3-2017 AES-128 test BDK');
CREATE TABLE ledger_entries (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id),
        transaction_id INTEGER NOT NULL REFERENCES transactions(id),
        amount INTEGER NOT NULL CHECK (amount != 0),
        available_after INTEGER NOT NULL,
        ledger_after INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
INSERT INTO "ledger_entries" VALUES(1,1,2,-1250,1233317,1233317,1795334525);
CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE,
        transaction_id INTEGER REFERENCES transactions(id),
        account_event_id INTEGER REFERENCES account_events(id),
        cardholder_id INTEGER REFERENCES cardholders(id),
        kind TEXT NOT NULL,
        card_last4 TEXT NOT NULL CHECK (length(card_last4) = 4),
        channel TEXT NOT NULL,
        destination TEXT NOT NULL,
        language TEXT,
        text TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER,
        reason TEXT,
        sent_at INTEGER,
        gateway_ref TEXT,
        created_at INTEGER NOT NULL
    );
INSERT INTO "outbox" VALUES(1,'043927549d2c8b2b',1,NULL,1,'balance_inquiry','0011','sms','138****5678','en','Card ending 0011: balance inquiry at terminal T0000001, 2026-11-22 16:02. Available CNY 12,345.67, ledger CNY 12,345.67.','sent',1,NULL,NULL,1795334525,'builtin-043927549d2c8b2b',1795334525);
INSERT INTO "outbox" VALUES(2,'a5ae21de639ee39a',2,NULL,1,'purchase','0011','sms','138****5678','en','Card ending 0011: purchase of CNY 12.50 at DEMO SHOP (T0000001), 2026-11-22 16:02. Available CNY 12,333.17.','sent',1,NULL,NULL,1795334525,'builtin-a5ae21de639ee39a',1795334525);
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO "schema_version" VALUES(4);
CREATE TABLE transactions (
        id INTEGER PRIMARY KEY,
        terminal_id TEXT NOT NULL,
        trace_number INTEGER NOT NULL,
        request_digest TEXT NOT NULL,
        kind TEXT NOT NULL,
        card_id INTEGER REFERENCES cards(id),
        amount INTEGER,
        currency INTEGER,
        response_code TEXT NOT NULL,
        response BLOB NOT NULL,
        request_time INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        ksn TEXT,
        approval_code TEXT,
        merchant_id TEXT,
        merchant_name TEXT,
        original_trace INTEGER,
        original_ksn TEXT,
        reversal_reason INTEGER,
        reversal_outcome INTEGER,
        original_id INTEGER REFERENCES transactions(id),
        reversed_by INTEGER REFERENCES transactions(id),
        UNIQUE (terminal_id, trace_number)
    );
INSERT INTO "transactions" VALUES(1,'T0000001',1,'506608e4388d0125887e0240be3c8ab0c1ca9fcb260c0de810ff81598755f5b6','balance_inquiry',1,NULL,156,'00',X'AA016854303030303030310201036230300466323431383939051A0012D687061A0012D68707189C08A301020263736D73036B3133382A2A2A2A35363738094C1234567890123456000000010F4886EEDFE454C62F73',1795305600,1795334525,'123456789012345600000001','241899',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "transactions" VALUES(2,'T0000001',2,'19a084756366708c94cd9fba8c295e5133dc013a51530850c7e96c0b4d218615','purchase',1,1250,156,'00',X'AA016854303030303030310202036230300466373334333530051A0012D1A5061A0012D1A507189C08A301020263736D73036B3133382A2A2A2A35363738094C1234567890123456000000020F48A9E4D5CC03045DE4',1795305600,1795334525,'123456789012345600000002','734350','104110070110001','DEMO SHOP',NULL,NULL,NULL,NULL,NULL,NULL);
INSERT INTO "transactions" VALUES(3,'T0000001',3,'f19c0bdcf58d61bfb2d04119244db2ee047e76559ee2cf0b3177cacdc58ba9ed','balance_inquiry',2,NULL,NULL,'55',X'A70168543030303030303102030362353508A10103094C1234567890123456000000030A020F489A63BEB1E976E9BB',1795305600,1795334525,'123456789012345600000003',NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL);
CREATE INDEX transactions_by_original ON transactions (terminal_id, original_trace) WHERE original_trace IS NOT NULL;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
COMMIT;
