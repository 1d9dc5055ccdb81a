"""Records of a product that the access tests aim at: a minimal PDF to
upload as evidence, and a notification for the product's producer with a
training enrolment of the product. Used by tests/test_authorization_matrix.py,
tests/test_idor.py and the web security tests."""
from storage.models import Enrolment, Notification, ProcessInstance, Training

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def notification_and_enrolment(session, cycle, now):
    """A message for the product's producer and a training enrolment of the
    product, as the cycle's handlers would write them later on."""
    instance = session.get(ProcessInstance, cycle.instance_id)
    producer_id = instance.product.producer_id
    notification = Notification(instance_id=instance.id, recipient_role="producer", producer_id=producer_id,
                                kind="idea_accepted", message="Ý tưởng sản phẩm đã được chấp nhận.", created_at=now)
    training = Training(title="Tập huấn xây dựng phương án", topic="business_plan", level="district",
                        jurisdiction_id=instance.areas["district"], starts_on=now.date(), place="Hội trường",
                        capacity=30, enrolled=1)
    session.add_all([notification, training])
    session.flush()
    enrolment = Enrolment(training_id=training.id, instance_id=instance.id, producer_id=producer_id,
                          topic="business_plan", enrolled_at=now)
    session.add(enrolment)
    session.flush()
    return notification.id, enrolment.id
