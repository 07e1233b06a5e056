"""The charter text the application offers when no version is in force (see
`documents.charter_current`): a summary of the Charte des AMAP (MIRAMAP, March 2014).

The text is a summary written for this application, not the official text. Migration 0002
keeps its own frozen copy (migrations never import application code); change this one
when the default offered to new databases should change.
"""

import datetime as dt

VERSION = "2014 (résumé)"
TITLE = "Charte des AMAP"
PUBLISHED_ON = dt.date(2014, 3, 16)  # adopted by the MIRAMAP general assembly of 15-16 March 2014

TEXT = """\
Charte des AMAP — version 2014 (résumé)

Ce texte résume, avec nos propres mots, les principes de la Charte des AMAP adoptée en mars 2014 \
par le Mouvement inter-régional des AMAP (MIRAMAP). Il n'en reproduit pas le texte officiel : \
celui-ci peut être consulté auprès du MIRAMAP et de son réseau régional. Un réseau peut charger le \
texte officiel dans l'application comme nouvelle version de la charte.

Pourquoi les AMAP
Une AMAP (Association pour le maintien d'une agriculture paysanne) réunit des citoyen·nes et une ou \
plusieurs fermes proches qui s'engagent les un·es envers les autres pour une saison. Nées en France \
au début des années 2000, les AMAP cherchent à faire vivre une agriculture locale qui fasse vivre \
celles et ceux qui la pratiquent, qui respecte les sols, l'eau, le climat et les animaux, et qui crée \
des emplois et des liens sur son territoire. Elles défendent un rapport responsable à l'alimentation, \
une économie de proximité, équitable et solidaire, et le droit des peuples à choisir leur agriculture \
et leur alimentation, en solidarité avec les paysan·nes du monde entier.

1. Une agriculture paysanne
Les fermes partenaires sont des fermes à taille humaine, autonomes dans leurs choix, économiquement \
viables et où les conditions de travail sont dignes. L'AMAP soutient l'installation de nouveaux \
paysan·nes, la transmission des fermes et l'accès à la terre. Les produits distribués viennent de la \
ferme partenaire elle-même.

2. Des pratiques agroécologiques
Les fermes cultivent et élèvent en respectant l'environnement, la biodiversité et le bien-être \
animal. Elles renoncent aux OGM, aux pesticides et aux engrais chimiques de synthèse, et s'inscrivent \
dans une démarche de progrès vers une agriculture biologique ou équivalente, que l'AMAP accompagne.

3. Une alimentation de qualité, accessible à toutes et à tous
Les produits sont frais, de saison, variés et sains. L'AMAP cherche des moyens pour que des personnes \
aux revenus modestes puissent, elles aussi, y participer.

4. Une participation active et une éducation populaire
Les membres ne sont pas des client·es : ils et elles font vivre l'association, prennent part aux \
distributions, aux visites et aux travaux de la ferme quand c'est proposé, et apprennent ensemble \
sur l'agriculture et l'alimentation. Les décisions se prennent dans la transparence et le dialogue.

5. Un partenariat direct, solidaire et sans intermédiaire
Membres et paysan·nes sont lié·es par un contrat pour une saison, sans intermédiaire commercial. \
Le prix est fixé ensemble, de façon juste pour la ferme et transparente pour les membres.

Les engagements réciproques
Les membres s'engagent à payer d'avance la saison (en un ou plusieurs versements), à accepter les \
aléas de la production, bons ou mauvais, comme une part du partenariat, et à participer à \
l'organisation des distributions et à la vie de l'AMAP.
Les paysan·nes s'engagent à livrer des produits de qualité issus de leur propre ferme, à être \
transparent·es sur leurs pratiques, leurs coûts et la construction de leurs prix, à informer les \
membres des aléas et à les accueillir à la ferme.
L'AMAP, par ses bénévoles et ses référent·es, fait vivre ce partenariat, veille au respect des \
contrats et favorise le dialogue entre toutes les parties.
"""
