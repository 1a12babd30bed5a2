# Texts on the display: amounts, decline reasons, notification lines, all within 16 columns.
from screens import money
from result import decline_lines, notification_lines, DECLINES


def test_money_formats():
    assert money(123456, 156) == ("1,234.56", "CNY")
    assert money(5, 840) == ("0.05", "USD")
    assert money(0, 978) == ("0.00", "EUR")
    assert money(1234567, 392) == ("1,234,567", "JPY")
    assert money(-250, 156) == ("-2.50", "CNY")
    assert money(100000000, 999) == ("1,000,000.00", "999")


def test_declines_fit_the_display():
    for code in DECLINES:
        for line in decline_lines(code):
            assert len(line) <= 16
    assert decline_lines("55") == ("Incorrect PIN", "")
    assert decline_lines("05") == ("Declined", "code 05")


def test_notification_lines():
    assert notification_lines({1: 2, 2: "sms", 3: "138****5678"}) == ("SMS sent to", "138****5678")
    assert notification_lines({1: 2, 2: "app", 3: "app ****5678"})[0] == "App alert sent"
    assert notification_lines({1: 3}) == ("Alerts not", "subscribed")
    assert notification_lines({1: 6, 4: "inquiries"}) == ("Bank does not", "alert inquiries")
    assert notification_lines({1: 7}) == ("No alert: no", "phone on file")
    assert notification_lines({1: 5, 4: "100.00"}) == ("Below alert", "threshold 100.00")
    assert notification_lines(None) == ("Alert status", "unknown")
    for status in range(1, 13):
        for line in notification_lines({1: status, 2: "sms", 3: "138****5678", 4: "100.00"}):
            assert len(line) <= 16, (status, line)
